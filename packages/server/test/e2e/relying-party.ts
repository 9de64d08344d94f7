import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';

/**
 * A small web application that signs people in with Gatehouse through `openid-client`, the
 * way a real one would: authorization code + PKCE (S256), state and nonce, a confidential
 * client, refresh, userinfo and RP-initiated logout; with `responseMode: 'form_post'` it asks
 * for the authorization response as a form post (OAuth 2.0 Form Post Response Mode). Its
 * pages print what it got, so a browser test can read them.
 */
export interface RelyingParty {
  url: string;
  /** How each authorization response arrived. */
  callbacks: { method: string; params: Record<string, string> }[];
  /** What the last callback and calls produced. */
  tokens?: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
  close(): Promise<void>;
}

export async function startRelyingParty(o: { issuer: string; clientId: string; clientSecret: string; scope: string; port: number; prompt?: string; responseMode?: 'form_post' }): Promise<RelyingParty> {
  const config = await oidc.discovery(new URL(o.issuer), o.clientId, o.clientSecret, oidc.ClientSecretBasic(o.clientSecret), { execute: [oidc.allowInsecureRequests] });
  const base = `http://127.0.0.1:${o.port}`;
  const pending = new Map<string, { verifier: string; nonce: string }>();
  const rp: RelyingParty = { url: base, callbacks: [], close: () => new Promise((resolve) => server.close(() => resolve())) };

  const page = (title: string, body: Record<string, unknown>) =>
    `<!doctype html><html lang="en"><head><title>${title}</title></head><body><h1>${title}</h1><pre id="result">${JSON.stringify(body).replace(/</g, '\\u003c')}</pre></body></html>`;

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', base);
    const send = (status: number, html: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...headers });
      res.end(html);
    };
    void (async () => {
      if (url.pathname === '/login') {
        const verifier = oidc.randomPKCECodeVerifier();
        const state = oidc.randomState();
        const nonce = oidc.randomNonce();
        pending.set(state, { verifier, nonce });
        const authorize = oidc.buildAuthorizationUrl(config, {
          redirect_uri: `${base}/callback`,
          scope: o.scope,
          code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          state,
          nonce,
          // offline_access needs prompt=consent (OIDC Core §11).
          ...(o.prompt ? { prompt: o.prompt } : {}),
          ...(o.responseMode ? { response_mode: o.responseMode } : {}),
        });
        return send(302, '', { location: authorize.href });
      }
      if (url.pathname === '/callback') {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const body = Buffer.concat(chunks).toString();
        const params = req.method === 'POST' ? new URLSearchParams(body) : url.searchParams;
        rp.callbacks.push({ method: req.method!, params: Object.fromEntries(params) });
        const state = params.get('state') ?? '';
        const expected = pending.get(state);
        if (!expected) return send(400, page('unknown state', {}));
        pending.delete(state);
        if (params.get('error')) return send(200, page('refused', { error: params.get('error') }));
        const response = req.method === 'POST' ? new Request(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body }) : url;
        const tokens = await oidc.authorizationCodeGrant(config, response, { pkceCodeVerifier: expected.verifier, expectedState: state, expectedNonce: expected.nonce });
        rp.tokens = tokens;
        const claims = tokens.claims()!;
        const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
        return send(200, page('signed in', { sub: claims.sub, amr: claims.amr, auth_time: claims.auth_time, userinfo, refresh: Boolean(tokens.refresh_token), acr: claims.acr }));
      }
      if (url.pathname === '/refresh') {
        const refreshed = await oidc.refreshTokenGrant(config, rp.tokens!.refresh_token!);
        const rotated = refreshed.refresh_token !== rp.tokens!.refresh_token;
        rp.tokens = refreshed;
        return send(200, page('refreshed', { rotated, access_token: Boolean(refreshed.access_token) }));
      }
      if (url.pathname === '/logout') {
        const end = oidc.buildEndSessionUrl(config, { id_token_hint: rp.tokens!.id_token!, post_logout_redirect_uri: `${base}/bye` });
        return send(302, '', { location: end.href });
      }
      if (url.pathname === '/bye') return send(200, page('signed out', {}));
      return send(404, page('not found', {}));
    })().catch((error: unknown) => send(500, page('error', { message: String(error) })));
  });
  await new Promise<void>((resolve) => server.listen(o.port, '127.0.0.1', resolve));
  rp.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return rp;
}
