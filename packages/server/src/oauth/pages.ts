/**
 * The pages people see: sign-in, consent, logout, errors. Server-rendered HTML that works
 * without JavaScript, loads nothing from other origins (one stylesheet from our own), and
 * is accessible: a language, a title, one main landmark, labelled fields in reading order,
 * errors announced (role="alert") and tied to the fields they concern. Each page is checked
 * by axe-core in Chromium against WCAG 2.1 A/AA (test/e2e/pages-accessibility.test.ts).
 */

/**
 * Every page's Content-Security-Policy: nothing runs, nothing from elsewhere loads. Chromium
 * applies form-action to the redirects after a form post too, so a page whose form ends at
 * the application lists the origins it may end at; without `formTargets` (the engine's
 * logout page, whose post-logout URI it alone knows) there is no form-action directive.
 * Without script-src, default-src 'none' blocks every script; the engine's pages add one
 * that admits only the engine's self-submitting form (ENGINE_CSP in engine-handler.ts).
 */
export function pageCsp(formTargets?: string[]): string {
  const formAction = formTargets ? ` form-action ${["'self'", ...new Set(formTargets)].join(' ')};` : '';
  return `default-src 'none'; style-src 'self'; img-src 'self';${formAction} frame-ancestors 'none'; base-uri 'none'`;
}

/**
 * The stylesheet at /assets/gatehouse.css: plain, readable, high contrast, no web fonts.
 * `--line` draws the edges of fields and secondary buttons, so it keeps 3:1 against the page
 * in both schemes (WCAG 2.1 §1.4.11 non-text contrast, which axe-core does not measure).
 * Buttons have a transparent border rather than none: forced-colors mode (Windows High
 * Contrast) paints it, and the filled and outlined buttons keep one height.
 */
export const STYLESHEET = `
:root { color-scheme: light dark; --fg: #111; --bg: #fff; --muted: #555; --accent: #0b57d0; --error: #b3261e; --line: #767676; }
@media (prefers-color-scheme: dark) { :root { --fg: #eee; --bg: #121212; --muted: #aaa; --accent: #8ab4f8; --error: #f2b8b5; --line: #8f8f8f; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 26rem; margin: 4rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; }
p.tenant { color: var(--muted); margin: 0 0 .25rem; }
img.logo { display: block; max-width: 12rem; height: 3rem; object-fit: contain; margin-bottom: .75rem; }
label { display: block; font-weight: 600; margin: 1rem 0 .25rem; }
input[type=email], input[type=password], input[type=text] { width: 100%; padding: .6rem; font: inherit; color: inherit; background: transparent; border: 1px solid var(--line); border-radius: .25rem; }
input:focus-visible, button:focus-visible, a:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
button { margin-top: 1.25rem; padding: .6rem 1.2rem; font: inherit; font-weight: 600; border: 1px solid transparent; border-radius: .25rem; background: var(--accent); color: var(--bg); cursor: pointer; }
button.secondary { background: transparent; color: var(--accent); border: 1px solid var(--line); }
.actions { display: flex; gap: .75rem; flex-wrap: wrap; }
.error { color: var(--error); border-left: 4px solid var(--error); padding: .25rem .75rem; margin: 1rem 0; }
ul.scopes { padding-left: 1.25rem; }
`;

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Text and attribute values, escaped for HTML. */
export const esc = (value: unknown) => String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]!);

/** Who the page speaks for: the tenant's display name and, if it has one, its logo's path on our origin. */
export interface PageTenant {
  name: string;
  logo?: string;
}

/** A tenant as its pages show it. */
export const pageTenant = (t: { id: string; displayName: string; logoType?: string | null }): PageTenant => ({
  name: t.displayName,
  ...(t.logoType ? { logo: `/t/${encodeURIComponent(t.id)}/logo` } : {}),
});

interface PageOptions {
  tenant: PageTenant;
  title: string;
  body: string;
}

function page({ tenant, title, body }: PageOptions): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(title)} – ${esc(tenant.name)}</title>
<link rel="stylesheet" href="/assets/gatehouse.css">
</head>
<body>
<main>
${tenant.logo ? `<img class="logo" src="${esc(tenant.logo)}" alt="" height="48">` : ''}<p class="tenant">${esc(tenant.name)}</p>
<h1>${esc(title)}</h1>
${body}
</main>
</body>
</html>`;
}

export function renderLoginPage(o: { tenant: PageTenant; client: string; action: string; csrf: string; email?: string; error?: string }): string {
  const error = o.error ? `<p class="error" id="login-error" role="alert">${esc(o.error)}</p>` : '';
  const described = o.error ? ' aria-describedby="login-error" aria-invalid="true"' : '';
  return page({
    tenant: o.tenant,
    title: 'Sign in',
    body: `<p>to continue to <strong>${esc(o.client)}</strong></p>
${error}<form method="post" action="${esc(o.action)}" novalidate>
<input type="hidden" name="csrf" value="${esc(o.csrf)}">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required value="${esc(o.email)}"${described}${o.email ? '' : ' autofocus'}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${described}${o.email ? ' autofocus' : ''}>
<div class="actions"><button type="submit">Sign in</button></div>
</form>`,
  });
}

export function renderConsentPage(o: { tenant: PageTenant; client: string; action: string; abort: string; csrf: string; scopes: string[] }): string {
  const items = o.scopes.map((s) => `<li>${esc(SCOPE_TEXT[s] ?? s)}</li>`).join('');
  return page({
    tenant: o.tenant,
    title: 'Allow access?',
    body: `<p><strong>${esc(o.client)}</strong> asks to:</p>
<ul class="scopes">${items}</ul>
<p>You can take this back later.</p>
<div class="actions">
<form method="post" action="${esc(o.action)}"><input type="hidden" name="csrf" value="${esc(o.csrf)}"><button type="submit">Allow</button></form>
<form method="post" action="${esc(o.abort)}"><input type="hidden" name="csrf" value="${esc(o.csrf)}"><button type="submit" class="secondary">Deny</button></form>
</div>`,
  });
}

const SCOPE_TEXT: Record<string, string> = {
  openid: 'Know who you are',
  profile: 'See your name, picture and language',
  email: 'See your email address',
  offline_access: 'Stay signed in to it when you are away',
};

/** oidc-provider's logout confirmation: its own form (with its CSRF token), our page around it. */
export function renderLogoutPage(o: { tenant: PageTenant; form: string }): string {
  // The form oidc-provider hands over submits itself with script; ours is a visible button.
  const formHtml = o.form.replace(/<script[\s\S]*?<\/script>/gi, '');
  const id = /<form[^>]*id="([^"]+)"/.exec(formHtml)?.[1] ?? 'op.logoutForm';
  return page({
    tenant: o.tenant,
    title: 'Sign out?',
    body: `${formHtml}
<p>Sign out of every application of ${esc(o.tenant.name)} in this browser.</p>
<div class="actions"><button type="submit" form="${esc(id)}" name="logout" value="yes">Sign out</button>
<button type="submit" form="${esc(id)}" class="secondary">Stay signed in</button></div>`,
  });
}

export function renderLoggedOutPage(o: { tenant: PageTenant }): string {
  return page({ tenant: o.tenant, title: 'Signed out', body: '<p>You are signed out. You can close this window.</p>' });
}

export function renderErrorPage(o: { tenant: PageTenant; error: string; description?: string }): string {
  return page({
    tenant: o.tenant,
    title: 'Something went wrong',
    body: `<p class="error" role="alert">${esc(o.description ?? o.error)}</p><p>Error code: <code>${esc(o.error)}</code>. Go back to the application and try again.</p>`,
  });
}

/** The hidden field and the action of a form oidc-provider hands over (its own CSRF token inside). */
function formParts(form: string): { action: string; xsrf: string } {
  return { action: /action="([^"]*)"/.exec(form)?.[1] ?? '', xsrf: /name="xsrf" value="([^"]*)"/.exec(form)?.[1] ?? '' };
}

/** RFC 8628 §3.3: where a person types the code their TV or command line shows. */
export function renderDeviceCodePage(o: { tenant: PageTenant; form: string; error?: string }): string {
  // oidc-provider's form carries inline script (onfocus): ours is rebuilt from its action and token.
  const { action, xsrf } = formParts(o.form);
  const error = o.error ? `<p class="error" id="code-error" role="alert">${esc(o.error)}</p>` : '';
  const described = o.error ? ' aria-describedby="code-error" aria-invalid="true"' : '';
  return page({
    tenant: o.tenant,
    title: 'Connect a device',
    body: `<p>Enter the code your device shows.</p>
${error}<form method="post" action="${esc(action)}">
<input type="hidden" name="xsrf" value="${esc(xsrf)}">
<label for="user_code">Code</label>
<input id="user_code" name="user_code" type="text" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false" required autofocus${described}>
<div class="actions"><button type="submit">Continue</button></div>
</form>`,
  });
}

/** The device's code again, to compare with the screen before signing in (RFC 8628 §5.4). */
export function renderDeviceConfirmPage(o: { tenant: PageTenant; client: string; userCode: string; form: string }): string {
  const { action, xsrf } = formParts(o.form);
  const hidden = `<input type="hidden" name="xsrf" value="${esc(xsrf)}"><input type="hidden" name="user_code" value="${esc(o.userCode)}">`;
  return page({
    tenant: o.tenant,
    title: 'Is this your device?',
    body: `<p><strong>${esc(o.client)}</strong> shows this code:</p>
<p><code>${esc(o.userCode)}</code></p>
<p>Continue only if your device shows exactly this code and you started the sign-in yourself.</p>
<div class="actions">
<form method="post" action="${esc(action)}">${hidden}<input type="hidden" name="confirm" value="yes"><button type="submit">Continue</button></form>
<form method="post" action="${esc(action)}">${hidden}<input type="hidden" name="abort" value="yes"><button type="submit" class="secondary">Cancel</button></form>
</div>`,
  });
}

export function renderDeviceDonePage(o: { tenant: PageTenant; client: string }): string {
  return page({ tenant: o.tenant, title: 'Device connected', body: `<p><strong>${esc(o.client)}</strong> is signed in. You can close this window and go back to your device.</p>` });
}
