import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's Chromium, headless: the browser of every end-to-end suite. */
export const launchChromium = (): Promise<Browser> => chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });

/** Whether an inline script the page adds to itself runs (a Content-Security-Policy should say no). */
export const inlineScriptRuns = (page: Page): Promise<boolean> =>
  page.evaluate<boolean>(`(() => {
    const script = document.createElement('script');
    script.textContent = 'window.inlineScriptRan = true';
    document.head.append(script);
    return window.inlineScriptRan === true;
  })()`);
