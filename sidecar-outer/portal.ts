/**
 * Portal mode (cli.md "Portal mode"; claim 5, patent 0069): browsers with no proxy settings
 * send origin-form requests to the outer. The Host header names the site: the portal host is
 * the fronted host plus an optional suffix (`--portal-suffix .localhost` makes
 * `intranet.example.localhost` the portal for `intranet.example`; with no suffix the fronted
 * names themselves resolve to the outer). Each site is its own browser origin, so cookies,
 * storage and Clear-Site-Data stay per site.
 *
 * - `/.sws/login` (GET form, POST user name and password) starts a session: an HttpOnly,
 *   SameSite=Strict cookie (Secure over TLS), plus a marker naming (by HMAC) the last user.
 * - `/.sws/logout` (POST) ends it and answers `Clear-Site-Data: "cache", "cookies", "storage"`.
 * - Logging in as a different user than the browser last held first answers with the same
 *   Clear-Site-Data on a redirect that carries no cookie; a one-time ticket then sets the new
 *   session, so the erasure can never remove the new user's cookie.
 * Everything else is forwarded, for the session's user, to the inner that fronts the site.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { FieldLine } from '../core/bhttp.ts';
import { endToEndFields } from '../sidecar-shared/headers.ts';
import { CLEAR_ALL } from './clearsite.ts';
import { parseProxyTarget, type ProxyTarget } from './target.ts';
import { AuthRateLimitedError } from './auth-limit.ts';

export interface PortalConfig {
  /** Portal host = site + suffix (lowercase, e.g. ".localhost"); '' when site names point at the outer. */
  readonly suffix: string;
  /** `Secure` on the cookies: always, never, or when the request came over TLS (auto). */
  readonly cookieSecure: 'auto' | 'always' | 'never';
  readonly sessionLifetimeMs: number;
  readonly sessionIdleMs: number;
}

export const PORTAL_DEFAULTS = { cookieSecure: 'auto', sessionLifetimeMs: 8 * 3600_000, sessionIdleMs: 3600_000 } as const;

export interface PortalDeps {
  /** The user when the password is right; throws AuthRateLimitedError for a `client` address over its allowance of wrong passwords. */
  authenticate(user: string, password: string, client: string): Promise<string | undefined>;
  /** A login refused (wrong password, or too many from this address): counted and logged by the sidecar, never with the password. */
  refused(code: 'SWS_ERR_LOGIN_FAILED' | 'SWS_ERR_AUTH_RATE_LIMITED', user: string, client: string): void;
  /** Whether an inner server fronts this site. */
  hasSite(host: string): boolean;
  /** Sends an authenticated request on (the same path as forward-proxy mode). */
  forward(req: IncomingMessage, res: ServerResponse, user: string, target: ProxyTarget, fields: FieldLine[], portalHost: string): Promise<void>;
}

interface Session {
  readonly user: string;
  readonly site: string;
  readonly created: number;
  lastSeen: number;
}

interface Ticket {
  readonly user: string;
  readonly site: string;
  readonly next: string;
  readonly expires: number;
}

const PREFIX = '/.sws/';
const SESSION = 'sws_session';
const MARKER = 'sws_last';
const MAX_SESSIONS = 100_000;
const TICKET_MS = 60_000;
const MAX_FORM = 8 * 1024;

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // not no-referrer: with it, browsers send "Origin: null" on the form POST, which #sameOrigin refuses
  'referrer-policy': 'same-origin',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
} as const;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A same-origin path to go back to after login; anything else becomes `/`. */
function safeNext(v: string | null | undefined): string {
  if (!v || !v.startsWith('/') || v.startsWith('//') || v.startsWith('/\\') || v.startsWith(PREFIX) || /[\s\x00-\x1f\x7f]/.test(v)) return '/';
  return v;
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    if (!out.has(name)) out.set(name, part.slice(i + 1).trim());
  }
  return out;
}

export class Portal {
  readonly #config: PortalConfig;
  readonly #deps: PortalDeps;
  readonly #sessions = new Map<string, Session>();
  readonly #tickets = new Map<string, Ticket>();
  readonly #markerKey = randomBytes(32);

  constructor(config: PortalConfig, deps: PortalDeps) {
    this.#config = config;
    this.#deps = deps;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const hostHeader = (req.headers.host ?? '').toLowerCase();
    const m = /^([a-z0-9.-]+)(?::(\d{1,5}))?$/.exec(hostHeader);
    const suffix = this.#config.suffix;
    const hostname = m?.[1] ?? '';
    const site = suffix ? (hostname.endsWith(suffix) ? hostname.slice(0, -suffix.length) : '') : hostname;
    if (!site || !this.#deps.hasSite(site)) {
      return this.#page(res, 404, 'No such site', `<p>No site is served at this address. Open a site through its portal name${suffix ? ` (the site's host name followed by <code>${escapeHtml(suffix)}</code>)` : ''}.</p>`);
    }
    const url = req.url ?? '/';
    const path = url.split('?')[0]!;
    const cookies = parseCookies(req.headers.cookie);
    if (path.startsWith(PREFIX)) return this.#own(req, res, site, path, url, cookies);

    const session = this.#session(cookies, site);
    if (!session) {
      req.resume();
      if (req.method === 'GET' || req.method === 'HEAD') {
        res.writeHead(303, { location: `${PREFIX}login?next=${encodeURIComponent(url)}`, 'cache-control': 'no-store', 'content-length': '0' }).end();
        return;
      }
      return this.#page(res, 403, 'Please log in', `<p>Your session has ended. <a href="${PREFIX}login">Log in</a> and try again.</p>`);
    }
    let target: ProxyTarget;
    try {
      target = parseProxyTarget(`http://${site}${url}`);
    } catch {
      req.resume();
      return this.#page(res, 400, 'Bad request', '<p>The address is not valid.</p>');
    }
    const fields = endToEndFields(req.rawHeaders, (n) => n === 'host' || n === 'cookie');
    const rest = [...cookies].filter(([n]) => !this.#ownCookie(n)).map(([n, v]) => `${n}=${v}`);
    if (rest.length > 0) fields.push(['cookie', rest.join('; ')]);
    await this.#deps.forward(req, res, session.user, target, fields, hostHeader);
  }

  /** Rewrites an absolute redirect to the site so the browser stays on the portal host. */
  rewriteLocation(fields: FieldLine[], site: string, portalHost: string, secure: boolean): FieldLine[] {
    return fields.map((f) => {
      if (f[0] !== 'location') return f;
      const m = /^https?:\/\/([^/?#]+)(.*)$/i.exec(f[1]);
      if (!m || m[1]!.toLowerCase() !== site) return f;
      return ['location', `${secure ? 'https' : 'http'}://${portalHost}${m[2] || '/'}`] as const;
    });
  }

  /** A user removed at the outer loses every portal session. */
  forgetUser(user: string): void {
    for (const [k, s] of this.#sessions) if (s.user === user) this.#sessions.delete(k);
  }

  #ownCookie(name: string): boolean {
    return name === SESSION || name === `__Host-${SESSION}` || name === MARKER;
  }

  #session(cookies: Map<string, string>, site: string): Session | undefined {
    const token = cookies.get(`__Host-${SESSION}`) ?? cookies.get(SESSION);
    if (!token) return undefined;
    const s = this.#sessions.get(token);
    if (!s) return undefined;
    const now = Date.now();
    if (s.site !== site || now - s.created > this.#config.sessionLifetimeMs || now - s.lastSeen > this.#config.sessionIdleMs) {
      if (s.site === site) this.#sessions.delete(token);
      return undefined;
    }
    s.lastSeen = now;
    return s;
  }

  #secure(req: IncomingMessage): boolean {
    if (this.#config.cookieSecure === 'always') return true;
    if (this.#config.cookieSecure === 'never') return false;
    return (req.socket as TLSSocket).encrypted === true;
  }

  #marker(user: string): string {
    return createHmac('sha256', this.#markerKey).update(user).digest().subarray(0, 16).toString('base64url');
  }

  #cookie(req: IncomingMessage, name: string, value: string, maxAgeS: number): string {
    const secure = this.#secure(req);
    const full = secure && name === SESSION ? `__Host-${SESSION}` : name;
    return `${full}=${value}; Path=/; Max-Age=${maxAgeS}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
  }

  /** A POST from another origin (login CSRF) is refused; browsers always send Origin on POST. */
  #sameOrigin(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    try {
      return new URL(origin).host.toLowerCase() === (req.headers.host ?? '').toLowerCase();
    } catch {
      return false;
    }
  }

  async #own(req: IncomingMessage, res: ServerResponse, site: string, path: string, url: string, cookies: Map<string, string>): Promise<void> {
    const query = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
    if (path === `${PREFIX}login` && req.method === 'GET') {
      req.resume();
      return this.#loginPage(res, 200, safeNext(query.get('next')));
    }
    if (path === `${PREFIX}login` && req.method === 'POST') return this.#login(req, res, site, cookies);
    if (path === `${PREFIX}login/continue` && req.method === 'GET') {
      req.resume();
      return this.#continue(req, res, site, query.get('t') ?? '');
    }
    if (path === `${PREFIX}logout` && req.method === 'GET') {
      req.resume();
      return this.#page(res, 200, 'Log out', `<form method="post" action="${PREFIX}logout"><button type="submit" id="logout">Log out</button></form><p>Logging out erases this site's data from this browser.</p>`);
    }
    if (path === `${PREFIX}logout` && req.method === 'POST') {
      req.resume();
      if (!this.#sameOrigin(req)) return this.#page(res, 403, 'Refused', '<p>Log out from this site\'s own page.</p>');
      const token = cookies.get(`__Host-${SESSION}`) ?? cookies.get(SESSION);
      if (token) this.#sessions.delete(token);
      res.setHeader('clear-site-data', CLEAR_ALL);
      res.setHeader('set-cookie', [this.#cookie(req, SESSION, '', 0), this.#cookie(req, MARKER, '', 0)]);
      return this.#page(res, 200, 'Logged out', `<p>You are logged out, and this browser's data for this site was erased.</p><p><a href="${PREFIX}login">Log in again</a></p>`);
    }
    req.resume();
    return this.#page(res, 404, 'Not found', '<p>Nothing here.</p>');
  }

  async #login(req: IncomingMessage, res: ServerResponse, site: string, cookies: Map<string, string>): Promise<void> {
    if (!this.#sameOrigin(req)) {
      req.resume();
      return this.#page(res, 403, 'Refused', '<p>Log in from this site\'s own login page.</p>');
    }
    const form = await readForm(req);
    if (!form) return this.#page(res, 400, 'Bad request', '<p>The login form could not be read.</p>');
    const name = form.get('user') ?? '';
    const next = safeNext(form.get('next'));
    const client = req.socket.remoteAddress ?? '';
    let user: string | undefined;
    try {
      user = name && form.get('password') ? await this.#deps.authenticate(name, form.get('password')!, client) : undefined;
    } catch (err) {
      if (!(err instanceof AuthRateLimitedError)) throw err;
      this.#deps.refused('SWS_ERR_AUTH_RATE_LIMITED', name, client);
      res.setHeader('retry-after', String(err.retryAfterSeconds));
      return this.#loginPage(res, 429, next, `Too many wrong passwords from this address. Try again in ${err.retryAfterSeconds} seconds.`, name);
    }
    if (!user) {
      this.#deps.refused('SWS_ERR_LOGIN_FAILED', name, client);
      return this.#loginPage(res, 403, next, 'Wrong user name or password.', name);
    }

    const token = cookies.get(`__Host-${SESSION}`) ?? cookies.get(SESSION);
    const previous = token ? this.#sessions.get(token) : undefined;
    const marker = cookies.get(MARKER);
    if (token) this.#sessions.delete(token);
    const switched = (previous !== undefined && previous.user !== user) || (marker !== undefined && marker !== this.#marker(user)) || (token !== undefined && previous === undefined && marker === undefined);
    if (switched) {
      // Erase the previous user's data first, on a response that sets no cookie.
      const ticket = randomBytes(32).toString('base64url');
      this.#tickets.set(ticket, { user, site, next, expires: Date.now() + TICKET_MS });
      this.#sweepTickets();
      res.writeHead(303, { location: `${PREFIX}login/continue?t=${ticket}`, 'clear-site-data': CLEAR_ALL, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer', 'content-length': '0' }).end();
      return;
    }
    this.#start(req, res, user, site, next);
  }

  #continue(req: IncomingMessage, res: ServerResponse, site: string, ticket: string): void {
    const t = this.#tickets.get(ticket);
    this.#tickets.delete(ticket);
    if (!t || t.site !== site || t.expires < Date.now()) return this.#loginPage(res, 403, '/', 'That login link has expired. Please log in again.');
    this.#start(req, res, t.user, site, t.next);
  }

  #start(req: IncomingMessage, res: ServerResponse, user: string, site: string, next: string): void {
    const token = randomBytes(32).toString('base64url');
    if (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    const now = Date.now();
    this.#sessions.set(token, { user, site, created: now, lastSeen: now });
    res.setHeader('set-cookie', [
      this.#cookie(req, SESSION, token, Math.floor(this.#config.sessionLifetimeMs / 1000)),
      this.#cookie(req, MARKER, this.#marker(user), 365 * 86400),
    ]);
    res.writeHead(303, { location: next, 'cache-control': 'no-store', 'content-length': '0' }).end();
  }

  #sweepTickets(): void {
    const now = Date.now();
    for (const [k, t] of this.#tickets) if (t.expires < now) this.#tickets.delete(k);
  }

  #loginPage(res: ServerResponse, status: number, next: string, error?: string, user = ''): void {
    this.#page(
      res,
      status,
      'Log in',
      `${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}<form method="post" action="${PREFIX}login">
<input type="hidden" name="next" value="${escapeHtml(next)}">
<label>User name <input name="user" id="user" autocomplete="username" value="${escapeHtml(user)}" required></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label>
<button type="submit" id="login">Log in</button>
</form>`,
    );
  }

  #page(res: ServerResponse, status: number, title: string, body: string): void {
    const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} · sws</title><style>body{font:16px system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}label{display:block;margin:.8rem 0}input{display:block;width:100%;padding:.4rem}button{padding:.5rem 1.2rem}.error{color:#a00}</style></head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
    res.writeHead(status, { ...PAGE_HEADERS, 'content-length': Buffer.byteLength(html) });
    res.end(html);
  }
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    req.resume();
    return undefined;
  }
  const parts: Buffer[] = [];
  let size = 0;
  for await (const c of req.iterator({ destroyOnReturn: false })) {
    size += (c as Buffer).length;
    if (size > MAX_FORM) {
      req.resume();
      return undefined;
    }
    parts.push(c as Buffer);
  }
  return new URLSearchParams(Buffer.concat(parts).toString('utf8'));
}
