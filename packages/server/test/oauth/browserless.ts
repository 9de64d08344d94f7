import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { basic } from '../helpers.js';

/** A browser without a screen: cookies (names only, paths ignored) and manual redirects. */
export class Agent {
  readonly cookies = new Map<string, string>();
  constructor(private readonly origin: string) {}

  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    if (!headers.has('accept')) headers.set('accept', 'text/html');
    const response = await fetch(new URL(url, this.origin), { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair!.indexOf('=');
      const name = pair!.slice(0, at);
      const value = pair!.slice(at + 1);
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }

  /** Follows redirects inside Gatehouse; stops at a page, or at the application's redirect URI. */
  async follow(url: string, init?: RequestInit): Promise<{ page?: string; status: number; callback?: URL }> {
    let response = await this.request(url, init);
    for (let hops = 0; hops < 10 && response.status >= 300 && response.status < 400; hops++) {
      const location = new URL(response.headers.get('location')!, this.origin);
      if (location.origin !== this.origin) return { status: response.status, callback: location };
      response = await this.request(location.href);
    }
    return { status: response.status, page: await response.text() };
  }
}

export const field = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];
export const action = (html: string, path: string) => new RegExp(`action="([^"]*/${path})"`).exec(html)?.[1];
export const verifierPair = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};


/** The authorization request, the sign-in through the pages, and the token endpoint of one client. */
export function signInDriver(o: { origin: string; tenant: string; clientId: string; clientSecret: string; redirectUri: string; email: string; password: string }) {
  const authorizeUrl = (params: Record<string, string | undefined>) => {
    const url = new URL(`${o.origin}/t/${o.tenant}/auth`);
    for (const [k, v] of Object.entries({ client_id: o.clientId, response_type: 'code', redirect_uri: o.redirectUri, scope: 'openid email', state: 'st', nonce: 'nn', ...params })) {
      if (v !== undefined) url.searchParams.set(k, v);
    }
    return url.href;
  };

  /** Signs in through the pages and returns the redirect to the application (consent given when asked). */
  async function signIn(agent: Agent, params: Record<string, string | undefined>): Promise<URL> {
    let step = await agent.follow(authorizeUrl(params));
    if (step.page && action(step.page, 'login')) {
      step = await agent.follow(action(step.page, 'login')!, { method: 'POST', body: new URLSearchParams({ csrf: field(step.page, 'csrf')!, email: o.email, password: o.password }) });
    }
    if (step.page && action(step.page, 'consent')) {
      step = await agent.follow(action(step.page, 'consent')!, { method: 'POST', body: new URLSearchParams({ csrf: field(step.page, 'csrf')! }) });
    }
    assert.ok(step.callback, `expected a redirect to the application, got ${step.status}: ${step.page?.slice(0, 200)}`);
    return step.callback;
  }

  const token = async (form: Record<string, string>) => {
    const response = await fetch(`${o.origin}/t/${o.tenant}/token`, {
      method: 'POST',
      headers: { authorization: basic(o.clientId, o.clientSecret), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
    });
    return { status: response.status, json: (await response.json()) as Record<string, string> };
  };

  return { authorizeUrl, signIn, token };
}
