/**
 * `sws inner key rotate | list | retire`: rotating the inner's long-term key pair without
 * downtime (docs/CERTIFICATES.md "Rotating the inner key").
 */
import { Option, type Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_OVERLAP_SECONDS, innerKeys } from '../../store/innerkeys.ts';
import type { RsaKeyBits } from '../../core/crypto.ts';
import { fingerprintOf, group, table, withStore, type CliContext } from './common.ts';
import { intFlag } from './run.ts';

export function register(program: Command, ctx: CliContext): void {
  const key = group(group(program, 'inner'), 'key', "print the inner's public key (PEM, SPKI) on stdout; rotate, list and retire keys");

  key
    .command('rotate')
    .description('make a new inner key pair, endorsed by the current one; the old key stays usable for --overlap seconds')
    .option('--overlap <SECONDS>', `how long the old key is still accepted (default ${DEFAULT_OVERLAP_SECONDS}, a week)`)
    .addOption(new Option('--key-bits <BITS>', 'RSA size of the new key (default: that of the current key)').choices(['2048', '3072', '4096']))
    .option('--statement-out <FILE>', 'also write the endorsement statement (JSON) here, for `sws server update NAME --statement FILE`')
    .action(async (opts: { overlap?: string; keyBits?: string; statementOut?: string }, cmd: Command) => {
      const overlapSeconds = intFlag(opts.overlap, '--overlap', 0, 366 * 86_400) ?? DEFAULT_OVERLAP_SECONDS;
      const r = await withStore(cmd, ctx, 'inner', (store) =>
        innerKeys(store).rotate({ overlapSeconds, ...(opts.keyBits ? { bits: Number(opts.keyBits) as RsaKeyBits } : {}) }),
      );
      if (opts.statementOut !== undefined) writeFileSync(resolve(ctx.cwd, opts.statementOut), JSON.stringify(r.endorsement, null, 2) + '\n', { mode: 0o644 });
      ctx.out(
        `new inner key ${fingerprintOf(r.current.keyId)} (RSA ${r.current.bits}), endorsed by ${fingerprintOf(r.previous.keyId)}\n` +
          `  the old key is accepted until ${new Date(r.previous.retireAt ?? Date.now()).toISOString()}\n` +
          'next, at each outer: `sws server update NAME --statement FILE` (statement from `sws inner key --statement`) or `--key FILE` (from `sws inner key`)',
      );
    });

  key
    .command('list')
    .description("the inner's key pairs: current, retiring (still accepted) and retired")
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const list = await withStore(cmd, ctx, 'inner', (store) => innerKeys(store).list(), { readonly: true });
      const now = Date.now();
      const state = (s: string, retireAt?: number) => (s === 'retiring' && retireAt !== undefined && retireAt <= now ? 'retired' : s);
      if (opts.json) {
        return ctx.json(
          list.map((k) => ({ keyId: k.keyId, bits: k.bits, state: state(k.state, k.retireAt), createdAt: k.createdAt, ...(k.retireAt !== undefined ? { retireAt: new Date(k.retireAt).toISOString() } : {}) })),
        );
      }
      ctx.out(table(['KEY', 'BITS', 'STATE', 'UNTIL', 'CREATED'], list.map((k) => [fingerprintOf(k.keyId), String(k.bits), state(k.state, k.retireAt), k.retireAt !== undefined ? new Date(k.retireAt).toISOString() : '-', k.createdAt])));
    });

  key
    .command('retire')
    .description('end the overlap now: exchanges naming the old key are refused and its sessions end')
    .argument('[KEYID]', 'the retiring key (sha256:… or hex; default: every retiring key)')
    .action(async (keyId: string | undefined, _opts: object, cmd: Command) => {
      const id = keyId?.toLowerCase().replace(/^sha256:/, '');
      const n = await withStore(cmd, ctx, 'inner', (store) => innerKeys(store).retire(id));
      ctx.out(n === 0 ? 'no key was retiring' : `retired ${n} key${n === 1 ? '' : 's'}`);
    });
}
