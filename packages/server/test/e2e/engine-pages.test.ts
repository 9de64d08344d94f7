import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { freePort, startServer, type TestServer } from '../helpers.js';
import { launchChromium, inlineScriptRuns } from './browser.js';
import { startRelyingParty, type RelyingParty } from './relying-party.js';

const PASSWORD = 'correct horse battery staple';
const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
/** A hash source, the only kind of source the engine's script-src may hold. */
const HASH_SOURCE = /^'sha256-[A-Za-z0-9+/]{43}='$/;

/** The directives of a Content-Security-Policy header, by name (the engine's helper joins them with a bare `;`). */
const directives = (csp: string) => new Map(csp.split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map(([name, ...values]) => [name!, values]));

/**
 * A fresh browser profile (no cookies: nobody is signed in) whose pages report every
 * Content-Security-Policy message: Chromium's own console errors ("Refused to execute inline
 * script…") and warnings about the policy itself ("…'none' alongside other source
 * expressions…"), and each `securitypolicyviolation` event, which an init script (run by the
 * DevTools protocol, outside the page's policy) logs. `violation` rejects at the first one,
 * so a flow stuck on a blocked script fails at once instead of waiting for a timeout.
 */
interface Watched {
  context: BrowserContext;
  page: Page;
  reports: string[];
  /** The Content-Security-Policy of every page (not redirect) Gatehouse served to this browser tab. */
  engineCsps: { url: string; csp: string }[];
  violation: Promise<never>;
}

async function watchedPage(browser: Browser, gatehouse: string): Promise<Watched> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const reports: string[] = [];
  const engineCsps: Watched['engineCsps'] = [];
  let fail: (error: Error) => void = () => {};
  const violation = new Promise<never>((_, reject) => {
    fail = reject;
  });
  violation.catch(() => {});
  await page.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => console.error('Content-Security-Policy violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI + ' at ' + e.documentURI));`);
  page.on('console', (message) => {
    if (!/Content[- ]Security[- ]Policy/i.test(message.text())) return;
    reports.push(message.text());
    fail(new Error(`CSP report on ${page.url()}: ${message.text()}`));
  });
  page.on('response', (response) => {
    if (response.request().isNavigationRequest() && response.url().startsWith(gatehouse) && !response.headers().location) {
      engineCsps.push({ url: response.url(), csp: response.headers()['content-security-policy'] ?? '' });
    }
  });
  return { context, page, reports, engineCsps, violation };
}

/** Waits until the page is at `where`, failing at once if a CSP report comes first. */
const arrive = (w: Watched, where: (url: URL) => boolean) => Promise.race([w.page.waitForURL(where), w.violation]);

/**
 * Every engine page had a policy that loads nothing by default and runs nothing but hashed
 * scripts; our own sign-in pages (Fastify, /interaction/) still have no script-src at all, so
 * default-src 'none' keeps every script off them, and keep their form-action.
 */
function assertPolicies(w: Watched, engineScriptSeen: boolean) {
  assert.ok(w.engineCsps.length > 0);
  let hashes = 0;
  for (const { url, csp } of w.engineCsps) {
    const policy = directives(csp);
    assert.deepEqual(policy.get('default-src'), ["'none'"], `${url}: ${csp}`);
    if (new URL(url).pathname.includes('/interaction/')) {
      assert.equal(policy.get('script-src'), undefined, `${url}: ${csp}`);
      assert.equal(policy.get('form-action')?.[0], "'self'", `${url}: ${csp}`);
      continue;
    }
    const scriptSrc = policy.get('script-src') ?? [];
    assert.ok(scriptSrc.length > 0 && scriptSrc.every((source) => HASH_SOURCE.test(source)), `${url}: script-src must hold hashes only: ${csp}`);
    hashes = Math.max(hashes, scriptSrc.length);
  }
  // The engine's auto-submitting page added the hash of its script to the starting one.
  if (engineScriptSeen) assert.ok(hashes >= 2, JSON.stringify(w.engineCsps));
}

// oidc-provider serves its own "Submitting Callback" page, a form that an inline script
// submits (its <noscript> button never shows when JavaScript is on), in three places: the
// form_post response mode, session/end when nobody is signed in, and the device link with
// the code in it. In real Chromium each must reach its end under the engine's CSP, with no
// CSP report on the way.
describe("the engine's own pages in a real browser", () => {
  let server: TestServer;
  let browser: Browser;
  let app: RelyingParty;
  let appClientId: string;
  let deviceClientId: string;
  let annId: string;
  const open: Watched[] = [];
  const watch = async () => {
    const w = await watchedPage(browser, server.url);
    open.push(w);
    return w;
  };

  before(async () => {
    server = await startServer({ listen: true });
    await server.core.tenants.create('acme', 'Acme Corp');
    annId = (await server.core.users.create('acme', { email: 'ann@acme.test', emailVerified: true, name: 'Ann Example', password: PASSWORD })).id;
    const port = await freePort();
    const { client, clientSecret } = await server.core.catalog.createClient('acme', {
      name: 'Shop',
      grantTypes: ['authorization_code'],
      redirectUris: [`http://127.0.0.1:${port}/callback`],
      postLogoutRedirectUris: [`http://127.0.0.1:${port}/bye`],
      firstParty: true,
    });
    appClientId = client.clientId;
    app = await startRelyingParty({ issuer: `${server.url}/t/acme`, clientId: client.clientId, clientSecret: clientSecret!, scope: 'openid email', port, responseMode: 'form_post' });
    deviceClientId = (await server.core.catalog.createClient('acme', { name: 'Acme CLI', type: 'public', grantTypes: [DEVICE_CODE], firstParty: true })).client.clientId;
    browser = await launchChromium();
  });

  after(async () => {
    for (const w of open) await w.context.close();
    await browser?.close();
    await app?.close();
    await server?.close();
  });

  it('posts the authorization response to the application (response_mode=form_post), whose code exchanges for tokens', async () => {
    const w = await watch();
    await w.page.goto(`${app.url}/login`);
    assert.equal(await w.page.title(), 'Sign in – Acme Corp');
    await w.page.getByLabel('Email').fill('ann@acme.test');
    await w.page.getByLabel('Password').fill(PASSWORD);
    await w.page.getByRole('button', { name: 'Sign in' }).click();
    await arrive(w, (url) => url.href === `${app.url}/callback`);
    assert.equal(await w.page.title(), 'signed in');
    assert.equal(app.callbacks.length, 1);
    const [callback] = app.callbacks;
    assert.equal(callback!.method, 'POST');
    assert.ok(callback!.params.code && callback!.params.state, JSON.stringify(callback));
    assert.equal(callback!.params.iss, `${server.url}/t/acme`);
    assert.ok(app.tokens?.access_token && app.tokens.id_token);
    assert.equal(app.tokens.claims()?.sub, annId);
    assert.deepEqual(w.reports, []);
    assertPolicies(w, true);
  });

  it("ends a session nobody holds at the application's post_logout_redirect_uri", async () => {
    const w = await watch();
    const end = new URL(`${server.url}/t/acme/session/end`);
    end.search = new URLSearchParams({ client_id: appClientId, post_logout_redirect_uri: `${app.url}/bye`, state: 'after-logout' }).toString();
    await w.page.goto(end.href, { waitUntil: 'commit' });
    await arrive(w, (url) => url.origin === app.url && url.pathname === '/bye');
    assert.equal(new URL(w.page.url()).searchParams.get('state'), 'after-logout');
    assert.equal(await w.page.title(), 'signed out');
    assert.deepEqual(w.reports, []);
    assertPolicies(w, true);
  });

  it('ends a session nobody holds on the signed-out page when no application is named', async () => {
    const w = await watch();
    await w.page.goto(`${server.url}/t/acme/session/end`, { waitUntil: 'commit' });
    await arrive(w, (url) => url.pathname === '/t/acme/session/end/success');
    assert.equal(await w.page.title(), 'Signed out – Acme Corp');
    assert.deepEqual(w.reports, []);
    assertPolicies(w, true);
  });

  it('takes the device link with the code in it to the confirmation, and the device gets tokens once the person signs in', async () => {
    const started = await fetch(`${server.url}/t/acme/device/auth`, { method: 'POST', body: new URLSearchParams({ client_id: deviceClientId, scope: 'openid' }) });
    const { device_code, user_code, verification_uri_complete } = (await started.json()) as Record<string, string>;
    assert.match(verification_uri_complete!, /\/t\/acme\/device\?user_code=/);
    const w = await watch();
    await w.page.goto(verification_uri_complete!, { waitUntil: 'commit' });
    // The link's page posts the code to the device endpoint, which answers with the confirmation.
    await arrive(w, (url) => url.pathname === '/t/acme/device' && url.search === '');
    assert.equal(await w.page.title(), 'Is this your device? – Acme Corp');
    assert.equal(await w.page.locator('code').textContent(), user_code);
    await w.page.getByRole('button', { name: 'Continue' }).click();
    assert.equal(await w.page.title(), 'Sign in – Acme Corp');
    await w.page.getByLabel('Email').fill('ann@acme.test');
    await w.page.getByLabel('Password').fill(PASSWORD);
    await w.page.getByRole('button', { name: 'Sign in' }).click();
    assert.equal(await w.page.title(), 'Device connected – Acme Corp');
    const tokens = await fetch(`${server.url}/t/acme/token`, { method: 'POST', body: new URLSearchParams({ client_id: deviceClientId, grant_type: DEVICE_CODE, device_code: device_code! }) });
    const json = (await tokens.json()) as Record<string, string>;
    assert.equal(tokens.status, 200, JSON.stringify(json));
    assert.ok(json.access_token && json.id_token);
    assert.deepEqual(w.reports, []);
    assertPolicies(w, true);
  });

  it("runs only the engine's own script: its policy holds the hash of that script, and any other inline script is refused", async () => {
    // The page as served: the policy's script-src is hashes only, one of them the script's.
    const served = await fetch(`${server.url}/t/acme/session/end`);
    const html = await served.text();
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1]!;
    const csp = served.headers.get('content-security-policy') ?? '';
    const policy = directives(csp);
    assert.deepEqual(policy.get('default-src'), ["'none'"], csp);
    const scriptSrc = policy.get('script-src') ?? [];
    assert.ok(scriptSrc.length > 0 && scriptSrc.every((source) => HASH_SOURCE.test(source)), csp);
    assert.ok(scriptSrc.includes(`'sha256-${createHash('sha256').update(script).digest('base64')}'`), scriptSrc.join(' '));
    for (const keyword of ["'none'", "'self'", "'unsafe-inline'", "'unsafe-eval'", "'strict-dynamic'"]) assert.ok(!scriptSrc.includes(keyword), keyword);

    // The same page with a second inline script slipped in before the engine's: Chromium
    // refuses that one and still runs the engine's, which carries the person on.
    const w = await watch();
    await w.page.route(`${server.url}/t/acme/session/end`, async (route) => {
      const response = await route.fetch();
      const body = (await response.text()).replace('<script>', `<script>console.log('injected script ran')</script>\n  <script>`);
      await route.fulfill({ response, body });
    });
    const logged: string[] = [];
    w.page.on('console', (message) => logged.push(message.text()));
    await w.page.goto(`${server.url}/t/acme/session/end`, { waitUntil: 'commit' });
    await w.page.waitForURL((url) => url.pathname === '/t/acme/session/end/success');
    assert.equal(await w.page.title(), 'Signed out – Acme Corp');
    assert.ok(!logged.includes('injected script ran'), logged.join('\n'));
    assert.ok(
      w.reports.some((r) => /violation: script-src(-elem)? blocked inline/.test(r)),
      w.reports.join('\n'),
    );
    // And on a page of the engine without that script (the signed-out page), a script added
    // to the page does not run either.
    assert.equal(await inlineScriptRuns(w.page), false);
  });
});
