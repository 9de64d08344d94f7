import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import type { AxeResults, RunOptions } from 'axe-core';
import type { Browser, Page } from 'playwright-core';
import { freePort, startServer, type TestServer } from '../helpers.js';
import { verifierPair } from '../oauth/browserless.js';
import { launchChromium, inlineScriptRuns } from './browser.js';
import { startRelyingParty, type RelyingParty } from './relying-party.js';

const PASSWORD = 'correct horse battery staple';
const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
// A 1×1 PNG: the tenant has a logo, so the pages are checked with their image.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
/** WCAG 2.0 and 2.1, levels A and AA, and axe's best practices (landmarks, one h1, heading order…). */
const AXE_OPTIONS: RunOptions = { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } };
/** The stylesheet has a light and a dark scheme: every check runs in both. */
const SCHEMES = ['light', 'dark'] as const;

/** The focused element as the assertions name it: `#id`, `tag:text`, or `body` when nothing on the page has focus. */
const FOCUSED = `(() => {
  const e = document.activeElement;
  return !e || e === document.body ? 'body' : e.id ? '#' + e.id : e.tagName.toLowerCase() + ':' + (e.textContent ?? '').trim();
})()`;

/** WCAG 2.1 contrast ratio of two colours as getComputedStyle spells them (`rgb(r, g, b)`). */
function contrast(a: string, b: string): number {
  const luminance = (color: string) => {
    const [r, g, bl] = (color.match(/[\d.]+/g) ?? []).map(Number).map((c) => (c / 255 <= 0.03928 ? c / 255 / 12.92 : ((c / 255 + 0.055) / 1.055) ** 2.4));
    return 0.2126 * r! + 0.7152 * g! + 0.0722 * bl!;
  };
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

/**
 * axe-core's violations on the page as it is now. axe goes in through the DevTools protocol
 * (Runtime.evaluate), which the page's Content-Security-Policy does not govern, so the page
 * is checked under its real policy.
 */
async function axeViolations(page: Page): Promise<string[]> {
  if (!(await page.evaluate<boolean>(`typeof window.axe?.run === 'function'`))) await page.evaluate(AXE_SOURCE);
  const results = await page.evaluate<AxeResults>(`axe.run(document, ${JSON.stringify(AXE_OPTIONS)})`);
  return results.violations.map((v) => {
    const where = v.nodes.map((n) => `${n.target.join(' ')}${n.failureSummary ? ` (${n.failureSummary.replace(/\s+/g, ' ')})` : ''}`).join('; ');
    return `${v.id} (${v.impact}): ${v.help} at ${where} — ${v.helpUrl}`;
  });
}

/**
 * WCAG 2.1 §1.4.11, which axe does not measure: what shows where a field or a button is —
 * its fill, or else its border — stands out 3:1 from the page.
 */
async function edgeViolations(page: Page): Promise<string[]> {
  const controls = await page.evaluate<{ name: string; fill: string; border: string; page: string }[]>(`(() => {
    const page = getComputedStyle(document.body).backgroundColor;
    return [...document.querySelectorAll('input:not([type=hidden]), button')].map((e) => {
      const s = getComputedStyle(e);
      return { name: e.id ? '#' + e.id : e.tagName.toLowerCase() + ':' + e.textContent.trim(), fill: s.backgroundColor, border: s.borderTopColor, page };
    });
  })()`);
  const transparent = (color: string) => color === 'transparent' || /^rgba\(.*, 0\)$/.test(color);
  return controls.flatMap((c) => {
    const edge = transparent(c.fill) ? c.border : c.fill;
    const ratio = contrast(edge, c.page);
    return ratio >= 3 ? [] : [`${c.name}: edge ${edge} on ${c.page} is ${ratio.toFixed(2)}:1, below 3:1 (WCAG 1.4.11)`];
  });
}

/** WCAG 2.1 §1.4.10, which axe does not measure either: 320 CSS pixels wide (1280 at 400% zoom), nothing scrolls sideways. */
async function reflowViolations(page: Page): Promise<string[]> {
  const viewport = page.viewportSize()!;
  await page.setViewportSize({ width: 320, height: 640 });
  const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
  await page.setViewportSize(viewport);
  return overflow > 0 ? [`320 CSS pixels wide, the page scrolls ${overflow}px sideways (WCAG 1.4.10)`] : [];
}

/** No axe violation, visible control edges in either scheme, no sideways scrolling; a language, a title, one main landmark, one h1. */
async function assertAccessible(page: Page, expectedTitle: string) {
  assert.equal(await page.title(), expectedTitle);
  const found: string[] = [];
  for (const colorScheme of SCHEMES) {
    await page.emulateMedia({ colorScheme });
    for (const v of [...(await axeViolations(page)), ...(await edgeViolations(page))]) found.push(`[${colorScheme}] ${v}`);
  }
  await page.emulateMedia({ colorScheme: null });
  found.push(...(await reflowViolations(page)));
  assert.deepEqual(found, [], `accessibility violations on "${expectedTitle}":\n${found.join('\n')}`);
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  assert.equal(await page.locator('main').count(), 1);
  assert.equal(await page.locator('h1').count(), 1);
}

/**
 * Where Tab stops, in order, from the top of the page, in both schemes; at each stop the focus
 * ring is drawn, at least 2px, at 3:1 or more against the page (WCAG 2.4.7, 1.4.11). Focus is
 * first walked off the end of the page (to the browser's own controls), so that the next Tab
 * enters the page at its start whatever the autofocus was.
 */
async function tabOrder(page: Page): Promise<string[]> {
  const focused = () => page.evaluate<string>(FOCUSED);
  const walks: string[][] = [];
  for (const colorScheme of SCHEMES) {
    await page.emulateMedia({ colorScheme });
    for (let i = 0; i < 20 && (await focused()) !== 'body'; i++) await page.keyboard.press('Tab');
    const stops: string[] = [];
    for (let i = 0; i < 20; i++) {
      await page.keyboard.press('Tab');
      const stop = await focused();
      if (stop === 'body') break;
      stops.push(stop);
      const ring = await page.evaluate<{ style: string; width: number; color: string; page: string }>(`(() => {
        const s = getComputedStyle(document.activeElement);
        return { style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor, page: getComputedStyle(document.body).backgroundColor };
      })()`);
      assert.ok(ring.style !== 'none' && ring.width >= 2 && contrast(ring.color, ring.page) >= 3, `[${colorScheme}] focus ring of ${stop}: ${JSON.stringify(ring)}`);
    }
    assert.ok(stops.length < 20, `Tab never left the page: ${stops.join(', ')}`);
    walks.push(stops);
  }
  await page.emulateMedia({ colorScheme: null });
  assert.deepEqual(walks[1], walks[0]);
  return walks[0]!;
}

/** The order on screen agrees with the order for Tab: each element is to the right of the one before on its line, or below it. */
async function assertScreenOrder(page: Page, selectors: string[]) {
  const boxes = await Promise.all(selectors.map(async (s) => (await page.locator(s).boundingBox())!));
  for (let i = 1; i < boxes.length; i++) {
    const [previous, box] = [boxes[i - 1]!, boxes[i]!];
    const sameLine = box.y < previous.y + previous.height && previous.y < box.y + box.height;
    assert.ok(sameLine ? box.x >= previous.x + previous.width : box.y >= previous.y + previous.height, `${selectors[i]} should come after ${selectors[i - 1]} on screen`);
  }
}

// Every page a person sees while signing in, checked by axe-core in real headless Chromium
// against WCAG 2.1 A/AA (and axe's best practices) with the page's own CSP in force, in the
// light and the dark scheme; and what axe cannot judge: the order Tab takes and where focus
// starts, the focus ring and control edges, how an error is tied to its fields.
describe('the sign-in pages are accessible', () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let shop: RelyingParty;
  let shopClientId: string;
  let deviceClientId: string;

  before(async () => {
    server = await startServer({ listen: true });
    await server.core.tenants.create('acme', 'Acme Corp');
    await server.core.tenants.setLogo('acme', { type: 'image/png', data: PNG });
    await server.core.users.create('acme', { email: 'ann@acme.test', emailVerified: true, name: 'Ann Example', password: PASSWORD });
    const port = await freePort();
    const { client, clientSecret } = await server.core.catalog.createClient('acme', {
      name: 'Shop',
      grantTypes: ['authorization_code', 'refresh_token'],
      redirectUris: [`http://127.0.0.1:${port}/callback`],
      postLogoutRedirectUris: [`http://127.0.0.1:${port}/bye`],
      firstParty: false,
    });
    shopClientId = client.clientId;
    // A third-party application that wants to stay signed in: the consent page lists four scopes.
    shop = await startRelyingParty({ issuer: `${server.url}/t/acme`, clientId: client.clientId, clientSecret: clientSecret!, scope: 'openid profile email offline_access', prompt: 'consent', port });
    deviceClientId = (await server.core.catalog.createClient('acme', { name: 'Acme CLI', type: 'public', grantTypes: [DEVICE_CODE], firstParty: true })).client.clientId;
    browser = await launchChromium();
    page = await browser.newPage();
  });

  after(async () => {
    await browser?.close();
    await shop?.close();
    await server?.close();
  });

  it('checks the pages under their own Content-Security-Policy, with their stylesheet, and axe reports what it finds', async () => {
    const response = await page.goto(`${shop.url}/login`);
    assert.match(response!.headers()['content-security-policy'] ?? '', /^default-src 'none';/);
    // The stylesheet from our origin applies, in both schemes.
    const background = () => page.evaluate<string>('getComputedStyle(document.body).backgroundColor');
    await page.emulateMedia({ colorScheme: 'dark' });
    assert.equal(await background(), 'rgb(18, 18, 18)');
    await page.emulateMedia({ colorScheme: 'light' });
    assert.equal(await background(), 'rgb(255, 255, 255)');
    assert.deepEqual(await axeViolations(page), []);
    // The page's policy still holds: a script it would add does not run.
    assert.equal(await inlineScriptRuns(page), false);
    // And axe does see a fault: the page without its language.
    await page.evaluate(`document.documentElement.removeAttribute('lang')`);
    assert.match((await axeViolations(page)).join('\n'), /^html-has-lang \(serious\)/);
  });

  it('shows a sign-in page that starts at the email field and tabs to password, then Sign in', async () => {
    await page.goto(`${shop.url}/login`);
    await assertAccessible(page, 'Sign in – Acme Corp');
    assert.equal(await page.evaluate<string>(FOCUSED), '#email');
    assert.deepEqual(await tabOrder(page), ['#email', '#password', 'button:Sign in']);
    await assertScreenOrder(page, ['#email', '#password', 'button[type=submit]']);
  });

  it('announces a refused password, ties it to both fields and puts focus on the password', async () => {
    await page.getByLabel('Email').fill('ann@acme.test');
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await assertAccessible(page, 'Sign in – Acme Corp');
    const alert = page.getByRole('alert');
    assert.equal(await alert.textContent(), 'Invalid email or password.');
    const alertId = await alert.getAttribute('id');
    assert.ok(alertId);
    for (const field of ['#email', '#password']) {
      assert.equal(await page.getAttribute(field, 'aria-invalid'), 'true', field);
      assert.equal(await page.getAttribute(field, 'aria-describedby'), alertId, field);
    }
    // The email stays as typed; the person goes on at the password.
    assert.equal(await page.inputValue('#email'), 'ann@acme.test');
    assert.equal(await page.evaluate<string>(FOCUSED), '#password');
    assert.deepEqual(await tabOrder(page), ['#email', '#password', 'button:Sign in']);
  });

  it('shows a consent page whose Allow comes before Deny, on screen and for Tab', async () => {
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await assertAccessible(page, 'Allow access? – Acme Corp');
    assert.equal(await page.locator('ul.scopes li').count(), 4);
    // The way forward first, as on every page; the way out after it.
    assert.deepEqual(await tabOrder(page), ['button:Allow', 'button:Deny']);
    await assertScreenOrder(page, ['button:text-is("Allow")', 'button:text-is("Deny")']);
    await page.getByRole('button', { name: 'Allow' }).click();
    assert.equal(await page.title(), 'signed in');
  });

  it('asks before signing out, with Sign out before Stay signed in', async () => {
    await page.goto(`${shop.url}/logout`);
    await assertAccessible(page, 'Sign out? – Acme Corp');
    assert.deepEqual(await tabOrder(page), ['button:Sign out', 'button:Stay signed in']);
    await assertScreenOrder(page, ['button:text-is("Sign out")', 'button:text-is("Stay signed in")']);
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    assert.equal(await page.title(), 'signed out');
  });

  it('says so once signed out when there is no application to return to', async () => {
    // Signed in again (the session is remembered, no form), then signed out at the provider itself.
    await page.goto(`${shop.url}/login`);
    await page.getByLabel('Email').fill('ann@acme.test');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    assert.equal(await page.title(), 'signed in');
    await page.goto(`${server.url}/t/acme/session/end`);
    await assertAccessible(page, 'Sign out? – Acme Corp');
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await assertAccessible(page, 'Signed out – Acme Corp');
  });

  it('connects a device: code entry, a wrong code, the confirmation and the end', async () => {
    const started = await fetch(`${server.url}/t/acme/device/auth`, { method: 'POST', body: new URLSearchParams({ client_id: deviceClientId, scope: 'openid' }) });
    const { user_code, verification_uri } = (await started.json()) as Record<string, string>;
    await page.goto(verification_uri!);
    await assertAccessible(page, 'Connect a device – Acme Corp');
    assert.equal(await page.evaluate<string>(FOCUSED), '#user_code');
    assert.deepEqual(await tabOrder(page), ['#user_code', 'button:Continue']);

    await page.getByLabel('Code').fill('BBBB-BBBB');
    await page.getByRole('button', { name: 'Continue' }).click();
    await assertAccessible(page, 'Connect a device – Acme Corp');
    const alert = page.getByRole('alert');
    assert.match((await alert.textContent()) ?? '', /^That code is not right/);
    assert.equal(await page.getAttribute('#user_code', 'aria-invalid'), 'true');
    assert.equal(await page.getAttribute('#user_code', 'aria-describedby'), await alert.getAttribute('id'));
    assert.equal(await page.evaluate<string>(FOCUSED), '#user_code');

    await page.getByLabel('Code').fill(user_code!);
    await page.getByRole('button', { name: 'Continue' }).click();
    await assertAccessible(page, 'Is this your device? – Acme Corp');
    assert.deepEqual(await tabOrder(page), ['button:Continue', 'button:Cancel']);
    await assertScreenOrder(page, ['button:text-is("Continue")', 'button:text-is("Cancel")']);

    // Signed out in the test before: the device's sign-in asks for the password.
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Email').fill('ann@acme.test');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await assertAccessible(page, 'Device connected – Acme Corp');
  });

  const errorPages: [string, () => string][] = [
    [
      'an authorization request with a redirect_uri the application did not register',
      () => {
        const query = new URLSearchParams({ client_id: shopClientId, response_type: 'code', redirect_uri: 'https://elsewhere.test/callback', scope: 'openid', code_challenge: verifierPair().challenge, code_challenge_method: 'S256' });
        return `${server.url}/t/acme/auth?${query}`;
      },
    ],
    ['a sign-in page that belongs to no sign-in of this browser', () => `${server.url}/t/acme/interaction/no-such-sign-in`],
  ];
  for (const [what, url] of errorPages) {
    it(`shows an error page for ${what}`, async () => {
      const response = await page.goto(url());
      assert.equal(response!.status(), 400);
      await assertAccessible(page, 'Something went wrong – Acme Corp');
      assert.ok((await page.getByRole('alert').textContent())?.length);
    });
  }
});
