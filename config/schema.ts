/**
 * The declarative configuration file of `sws apply` (GitOps), version 1. One file describes
 * one data dir, by role:
 *
 *   version: 1                       version: 1
 *   role: inner                      role: outer
 *   sites:                           servers:
 *     - host: intranet.example         - name: hq
 *       upstream: http://web:8080        url: http://inner.example:8480
 *       ca: <PEM> | caFile: FILE          publicKey: <PEM> | publicKeyFile: FILE
 *   clients:                             hosts: [intranet.example]
 *     - user: alice
 *       publicKey: <PEM> | publicKeyFile: FILE
 *   acl:
 *     - user: alice
 *       pattern: /docs/**
 *       methods: [GET, HEAD]         # optional: every method
 *       host: intranet.example       # optional: every site
 *
 * Users' passwords never appear here (they are set with `sws user add --password-stdin`).
 * Values are checked by the same schemas as the CLI flags (store/validate.ts) and normalized
 * the same way, so "the file" and "the database" compare like for like.
 */
import { zod, type Z } from '../store/zod.ts';
import { parsePattern, schemas, SwsError } from '../store/index.ts';

export const CONFIG_VERSION = 1;

// Loaded with this module: only `sws apply` and `--config` import it.
const z = zod();

const pattern = z.string().transform((v, ctx) => {
  try {
    return parsePattern(v, 'pattern').canonical;
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: e instanceof SwsError ? e.message.replace(/^pattern: /, '') : 'invalid pattern' });
    return z.NEVER;
  }
});

const methods = z
  .union([z.array(z.string()).min(1, { error: 'list at least one method, or leave methods out for all' }), z.string()])
  .transform((v, ctx) => {
    const r = schemas.methodsSchema().safeParse(Array.isArray(v) ? v.join(',') : v);
    if (r.success) return r.data;
    ctx.addIssue({ code: 'custom', message: r.error.issues[0]?.message ?? 'invalid methods' });
    return z.NEVER;
  });

const oneKey = (o: { publicKey?: string | undefined; publicKeyFile?: string | undefined }) => (o.publicKey === undefined) !== (o.publicKeyFile === undefined);
const KEY_MSG = 'give exactly one of publicKey (PEM) and publicKeyFile';

const site = z.strictObject({
  host: schemas.hostSchema(),
  upstream: schemas.upstreamUrlSchema(),
  ca: z.string().min(1).optional(),
  caFile: z.string().min(1).optional(),
});

const client = z.strictObject({
  user: schemas.userNameSchema(),
  publicKey: z.string().min(1).optional(),
  publicKeyFile: z.string().min(1).optional(),
});

const rule = z.strictObject({
  user: schemas.userNameSchema(),
  pattern,
  methods: methods.optional(),
  host: schemas.hostSchema().optional(),
});

const server = z.strictObject({
  name: schemas.serverNameSchema(),
  url: schemas.serverUrlSchema(),
  publicKey: z.string().min(1).optional(),
  publicKeyFile: z.string().min(1).optional(),
  hosts: z.array(schemas.hostSchema()).min(1, { error: 'list at least one host the inner server fronts' }),
});

const version = z.literal(CONFIG_VERSION, { error: `version must be ${CONFIG_VERSION} (the config format this sws reads)` });

export const innerConfigSchema = z.strictObject({
  version,
  role: z.literal('inner'),
  sites: z.array(site).default([]),
  clients: z.array(client.refine(oneKey, { error: KEY_MSG })).default([]),
  acl: z.array(rule).default([]),
});

export const outerConfigSchema = z.strictObject({
  version,
  role: z.literal('outer'),
  servers: z.array(server.refine(oneKey, { error: KEY_MSG })).default([]),
});

export const configSchema = z.discriminatedUnion('role', [innerConfigSchema, outerConfigSchema], { error: 'role must be inner or outer' });

export type InnerConfigFile = Z.output<typeof innerConfigSchema>;
export type OuterConfigFile = Z.output<typeof outerConfigSchema>;
export type ConfigFile = Z.output<typeof configSchema>;
