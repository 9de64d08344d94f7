import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { freePort, startServer, type TestServer } from '../helpers.js';
import { launchChromium } from './browser.js';
import { startRelyingParty, type RelyingParty } from './relying-party.js';

const PASSWORD = 'correct horse battery staple';

// A person in real headless Chromium signs in to two applications of one tenant built with
// openid-client: the login form, consent for the third-party one, the callback, userinfo,
// refresh, single sign-on into the first-party one without a prompt, and logout.
describe('sign-in in a real browser', () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let shop: RelyingParty;
  let intranet: RelyingParty;

  const result = async () => JSON.parse((await page.locator('#result').textContent()) ?? 'null') as Record<string, unknown>;

  before(async () => {
    server = await startServer({ listen: true });
    await server.core.tenants.create('acme', 'Acme Corp');
    await server.core.users.create('acme', { email: 'Ann@Acme.test', emailVerified: true, name: 'Ann Example', password: PASSWORD });
    const apps: RelyingParty[] = [];
    for (const [name, firstParty, scope, prompt] of [
      // A third-party application that wants to stay signed in: consent, refresh tokens.
      ['Shop', false, 'openid profile email offline_access', 'consent'],
      // The tenant's own application: no consent screen.
      ['Intranet', true, 'openid profile email', undefined],
    ] as const) {
      const port = await freePort();
      const { client, clientSecret } = await server.core.catalog.createClient('acme', {
        name,
        grantTypes: ['authorization_code', 'refresh_token'],
        redirectUris: [`http://127.0.0.1:${port}/callback`],
        postLogoutRedirectUris: [`http://127.0.0.1:${port}/bye`],
        firstParty,
      });
      apps.push(await startRelyingParty({ issuer: `${server.url}/t/acme`, clientId: client.clientId, clientSecret: clientSecret!, scope, prompt, port }));
    }
    [shop, intranet] = apps as [RelyingParty, RelyingParty];
    browser = await launchChromium();
    page = await browser.newPage();
  });

  after(async () => {
    await browser?.close();
    await shop?.close();
    await intranet?.close();
    await server?.close();
  });

  it('signs in with the login form and consent, then calls userinfo', async () => {
    await page.goto(`${shop.url}/login`);
    assert.equal(await page.title(), 'Sign in – Acme Corp');
    // The form is labelled and starts at the email field.
    await page.getByLabel('Email').fill('ann@acme.test');
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    assert.equal(await page.getByRole('alert').textContent(), 'Invalid email or password.');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    assert.equal(await page.title(), 'Allow access? – Acme Corp');
    assert.match((await page.locator('ul.scopes').textContent()) ?? '', /email address/);
    await page.getByRole('button', { name: 'Allow' }).click();
    const signedIn = await result();
    assert.equal(await page.title(), 'signed in');
    assert.deepEqual(signedIn.amr, ['pwd']);
    assert.equal(signedIn.acr, 'urn:gatehouse:loa:1');
    assert.equal(typeof signedIn.auth_time, 'number');
    assert.equal((signedIn.userinfo as { email: string }).email, 'Ann@Acme.test');
    assert.equal((signedIn.userinfo as { name: string }).name, 'Ann Example');
    assert.equal(signedIn.refresh, true);
  });

  it('refreshes, and the refresh token rotates', async () => {
    await page.goto(`${shop.url}/refresh`);
    assert.deepEqual(await result(), { rotated: true, access_token: true });
  });

  it('signs in to a second, first-party application without any prompt', async () => {
    await page.goto(`${intranet.url}/login`);
    assert.equal(await page.title(), 'signed in');
    assert.equal((await result()).sub, (shop.tokens!.claims() ?? {}).sub);
  });

  it('logs out, and the next sign-in asks for the password again', async () => {
    await page.goto(`${shop.url}/logout`);
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    assert.equal(await page.title(), 'signed out');
    await page.goto(`${intranet.url}/login`);
    assert.equal(await page.title(), 'Sign in – Acme Corp');
  });
});
