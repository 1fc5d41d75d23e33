/**
 * Input schemas (zod) shared by the CLI and the store's own write functions, so a value is
 * checked by the same rule at the edge and again before it reaches the database. `check`
 * turns the first zod issue into a UsageError naming the field (a CLI flag or argument).
 * Each schema is built on first use (store/zod.ts), so a sidecar start never loads zod: the
 * integer check every start makes is a plain function (listen addresses:
 * sidecar-shared/listen.ts parseListen).
 */
import { lazySchema, type LazySchema, type Z } from './zod.ts';
import { HostError, UsageError } from './errors.ts';
import { normalizeHost } from './acl/host.ts';
import { RSA_KEY_BITS, type RsaKeyBits } from '../core/crypto.ts';

export function check<S extends Z.ZodType>(schema: S | LazySchema<S>, value: unknown, field: string): Z.output<S> {
  const r = (typeof schema === 'function' ? schema() : schema).safeParse(value);
  if (r.success) return r.data;
  throw new UsageError(r.error.issues[0]?.message ?? 'invalid value', field);
}

/**
 * User names appear in Basic credentials, the X-Forwarded-User header and logs: no ":" (Basic),
 * no spaces or controls. Case is kept, but two names may not differ only in case.
 */
export const userNameSchema = lazySchema((z) =>
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/, {
    error: 'a user name is 1-128 characters: letters, digits and . _ @ + - (starting with a letter or digit)',
  }),
);

export const serverNameSchema = lazySchema((z) =>
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: 'a server name is 1-64 characters: letters, digits and . _ - (starting with a letter or digit)' }),
);

export const hostSchema = lazySchema((z) =>
  z.string().transform((v, ctx) => {
    try {
      return normalizeHost(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: e instanceof HostError ? e.message : 'invalid host' });
      return z.NEVER;
    }
  }),
);

/** `a.example,b.example:8080` → distinct normalized hosts, at least one. */
export const hostListSchema = lazySchema((z) =>
  z.string().transform((v, ctx) => {
    const out: string[] = [];
    for (const part of v.split(',')) {
      const h = part.trim();
      if (h === '') {
        ctx.addIssue({ code: 'custom', message: 'a comma-separated list of host names is expected (no empty entries)' });
        return z.NEVER;
      }
      try {
        const n = normalizeHost(h);
        if (!out.includes(n)) out.push(n);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: `"${h}": ${e instanceof HostError ? e.message : 'invalid host'}` });
        return z.NEVER;
      }
    }
    return out;
  }),
);

/** `get,HEAD` → ['GET', 'HEAD'] (upper-case, sorted, distinct). */
export const methodsSchema = lazySchema((z) =>
  z.string().transform((v, ctx) => {
    const set = new Set<string>();
    for (const part of v.split(',')) {
      const m = part.trim();
      if (!/^[A-Za-z]{1,32}$/.test(m)) {
        ctx.addIssue({ code: 'custom', message: 'a comma-separated list of HTTP methods is expected, e.g. GET,HEAD' });
        return z.NEVER;
      }
      set.add(m.toUpperCase());
    }
    return [...set].sort();
  }),
);

function httpUrl(v: string, ctx: Z.core.$RefinementCtx<string>, what: string): URL | undefined {
  if (!/^https?:\/\//i.test(v)) {
    ctx.addIssue({ code: 'custom', message: `${what} must be an http:// or https:// URL` });
    return undefined;
  }
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    ctx.addIssue({ code: 'custom', message: `${what} is not a valid URL` });
    return undefined;
  }
  if (u.username || u.password) {
    ctx.addIssue({ code: 'custom', message: `${what} must not contain a user name or password` });
    return undefined;
  }
  if (u.search || u.hash || v.includes('#')) {
    ctx.addIssue({ code: 'custom', message: `${what} must not have a query or fragment` });
    return undefined;
  }
  return u;
}

/** The WWW server behind a site: an origin only (scheme, host, port). */
export const upstreamUrlSchema = lazySchema((z) =>
  z.string().transform((v, ctx) => {
    const u = httpUrl(v, ctx, 'the upstream');
    if (!u) return z.NEVER;
    if (u.pathname !== '/') {
      ctx.addIssue({ code: 'custom', message: 'the upstream must be an origin such as http://10.0.0.5:8080 (no path); requests keep their own path' });
      return z.NEVER;
    }
    return u.origin;
  }),
);

/** Where an inner sidecar listens, as the outer reaches it (a path is allowed). */
export const serverUrlSchema = lazySchema((z) =>
  z.string().transform((v, ctx) => {
    const u = httpUrl(v, ctx, 'the server URL');
    if (!u) return z.NEVER;
    return u.pathname === '/' ? u.origin : u.origin + u.pathname;
  }),
);

/** `2048` (a number, or its decimal digits as a flag gives it) → one of RSA_KEY_BITS. */
export const keyBitsSchema = lazySchema((z) =>
  z
    .union([z.number(), z.string().regex(/^\d{1,5}$/).transform(Number)], { error: `allowed key sizes are ${RSA_KEY_BITS.join(', ')}` })
    .refine((n): n is RsaKeyBits => (RSA_KEY_BITS as readonly number[]).includes(n), { error: `allowed key sizes are ${RSA_KEY_BITS.join(', ')}` })
    .transform((n) => n as RsaKeyBits),
);

/** A decimal integer from `min` to `max`, given as digits (a flag or environment value). */
export function checkInt(value: unknown, min: number, max: number, field: string): number {
  if (typeof value === 'string' && /^\d{1,16}$/.test(value)) {
    const n = Number(value);
    if (n >= min && n <= max) return n;
  }
  throw new UsageError(`must be an integer from ${min} to ${max}`, field);
}

/** Passwords are compared as UTF-8 bytes, exactly. */
export const passwordSchema = lazySchema((z) =>
  z
    .string()
    .min(1, { error: 'the password is empty' })
    .refine((s) => new TextEncoder().encode(s).length <= 1024, { error: 'the password is longer than 1024 bytes' }),
);
