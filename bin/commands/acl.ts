/**
 * `sws acl grant | revoke | list | check`: the access control list 30 at the inner. `check`
 * decides with the same engine the inner sidecar uses (store/acl/engine.ts) and explains why
 * each other rule did not match; `grant`/`revoke --dry-run` show what would change.
 */
import type { Command } from 'commander';
import {
  aclEngine,
  aclRules,
  clients,
  normalizeHost,
  parseRequestUrl,
  PathAmbiguousError,
  sites,
  UsageError,
  type AclRule,
  type Store,
} from '../../store/index.ts';
import { group, table, withStore, type CliContext } from './common.ts';

export function formatRule(r: AclRule): string {
  return `${r.user} ${r.pattern} host=${r.host ?? '*'} methods=${r.methods?.join(',') ?? '*'}`;
}

const ruleJson = (r: AclRule) => ({ id: r.id, user: r.user, host: r.host, pattern: r.pattern, methods: r.methods, createdAt: r.createdAt });

function noteUnregistered(ctx: CliContext, store: Store, user: string): string | undefined {
  if (clients(store).get(user)) return undefined;
  const note = `${user} has no registered key at this inner: the inner rejects their requests before the ACL (see \`sws client add\`)`;
  ctx.note(`note: ${note}`);
  return note;
}

export function register(program: Command, ctx: CliContext): void {
  const acl = group(program, 'acl');

  acl
    .command('grant')
    .description('allow USER the paths matching PATTERN (default: all methods, all sites)')
    .argument('<USER>')
    .argument('<PATTERN>', 'absolute path; * matches within a segment, ** any whole segments (/docs/** matches /docs, /docs/ and below)')
    .option('--methods <LIST>', 'only these methods, e.g. GET,HEAD')
    .option('--host <HOST>', 'only this site')
    .option('--dry-run', 'show what would change, change nothing')
    .action(async (user: string, pattern: string, opts: { methods?: string; host?: string; dryRun?: boolean }, cmd: Command) => {
      const dry = opts.dryRun ?? false;
      await withStore(
        cmd,
        ctx,
        'inner',
        (store) => {
          const r = aclRules(store).grant({ user, pattern, host: opts.host, methods: opts.methods }, { dryRun: dry });
          const would = dry ? 'would ' : '';
          if (r.change === 'added') ctx.out(`${dry ? 'would add' : 'added'}: ${formatRule(r.rule)}`);
          else if (r.change === 'extended')
            ctx.out(`${dry ? 'would extend' : 'extended'}: ${formatRule(r.rule)} (methods were ${r.before.methods?.join(',') ?? '*'})`);
          else ctx.out(`unchanged: ${formatRule(r.rule)} (already granted${would ? '; nothing would change' : ''})`);
          noteUnregistered(ctx, store, user);
        },
        { readonly: dry },
      );
    });

  acl
    .command('revoke')
    .description('remove the grant of PATTERN to USER (for --host HOST, or the all-sites grant)')
    .argument('<USER>')
    .argument('<PATTERN>')
    .option('--host <HOST>', 'the site of a host-specific grant')
    .option('--dry-run', 'show what would change, change nothing')
    .action(async (user: string, pattern: string, opts: { host?: string; dryRun?: boolean }, cmd: Command) => {
      const dry = opts.dryRun ?? false;
      await withStore(
        cmd,
        ctx,
        'inner',
        (store) => {
          const r = aclRules(store).revoke({ user, pattern, host: opts.host }, { dryRun: dry });
          ctx.out(`${dry ? 'would remove' : 'removed'}: ${formatRule(r.rule)}`);
        },
        { readonly: dry },
      );
    });

  acl
    .command('list')
    .description('the rules (of USER)')
    .argument('[USER]')
    .option('--json', 'machine-readable output')
    .action(async (user: string | undefined, opts: { json?: boolean }, cmd: Command) => {
      const rules = await withStore(cmd, ctx, 'inner', (store) => aclRules(store).list(user), { readonly: true });
      if (opts.json) return ctx.json(rules.map(ruleJson));
      if (rules.length === 0) return ctx.note(user ? `no rules for ${user} (default deny)` : 'no rules (default deny)');
      ctx.out(table(['USER', 'HOST', 'PATTERN', 'METHODS', 'CREATED'], rules.map((r) => [r.user, r.host ?? '*', r.pattern, r.methods?.join(',') ?? '*', r.createdAt])));
    });

  acl
    .command('check')
    .description('print allow or deny and the rule that decided (exit 0 allow, 3 deny), and why the other rules did not match')
    .argument('<USER>')
    .argument('<METHOD>', 'HTTP method, e.g. GET')
    .argument('<URL>', 'the request URL, e.g. http://intranet.example/docs/a')
    .option('--json', 'machine-readable output')
    .action(async (user: string, method: string, url: string, opts: { json?: boolean }, cmd: Command) => {
      // Compared exactly, as the inner sidecar does: HTTP methods are case-sensitive (RFC 9110
      // §9.1), so `get` is not GET and rules (stored upper-case by `grant`) do not allow it.
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/.test(method)) throw new UsageError('an HTTP method such as GET is expected', 'METHOD');
      const m = method;
      let parsed;
      try {
        parsed = parseRequestUrl(url);
      } catch (e) {
        if (e instanceof PathAmbiguousError) throw new PathAmbiguousError(`URL: ${e.message}`);
        throw e;
      }
      const host = (() => {
        try {
          return normalizeHost(parsed.authority);
        } catch (e) {
          throw new UsageError(e instanceof Error ? e.message : 'invalid host', 'URL');
        }
      })();
      await withStore(
        cmd,
        ctx,
        'inner',
        (store) => {
          const engine = aclEngine(store);
          const ex = engine.explain(user, m, host, parsed.target);
          const notes: string[] = [];
          const n1 = opts.json ? (clients(store).get(user) ? undefined : `${user} has no registered key at this inner`) : noteUnregistered(ctx, store, user);
          if (n1) notes.push(n1);
          if (m !== m.toUpperCase()) {
            const n3 = `HTTP methods are case-sensitive: ${m} is not ${m.toUpperCase()}, and the inner decides ${m} exactly as given`;
            notes.push(n3);
            if (!opts.json) ctx.note(`note: ${n3}`);
          }
          if (!sites(store).get(host)) {
            const n2 = `no site is configured for ${host}: the inner would answer 404 whatever the ACL says`;
            notes.push(n2);
            if (!opts.json) ctx.note(`note: ${n2}`);
          }
          const d = ex.decision;
          ctx.exitCode = d.allow ? 0 : 3;
          if (opts.json) {
            ctx.json({
              decision: d.allow ? 'allow' : 'deny',
              user,
              method: m,
              host,
              path: parsed.target.path,
              forwardPath: parsed.target.forwardPath,
              query: parsed.target.query,
              ...(d.allow ? { rule: ruleJson(d.rule) } : { reason: d.reason }),
              rules: ex.rules.map((x) => ({ rule: ruleJson(x.rule), matched: x.matched, ...(x.reason ? { reason: x.reason } : {}) })),
              notes,
            });
            return;
          }
          let text = d.allow ? 'allow\n' : 'deny\n';
          text += d.allow ? `rule: #${d.rule.id} ${formatRule(d.rule)}\n` : `reason: ${d.reason}\n`;
          text += `request: ${m} ${host} ${parsed.target.path}${parsed.target.forwardPath !== parsed.target.path ? ` (forwarded as ${parsed.target.forwardPath})` : ''}\n`;
          const others = ex.rules.filter((x) => !(d.allow && x.rule.id === d.rule.id));
          if (others.length > 0) {
            text += d.allow ? 'other rules:\n' : 'rules that did not match:\n';
            const MAX = 50;
            for (const x of others.slice(0, MAX)) text += `  #${x.rule.id} ${formatRule(x.rule)}: ${x.matched ? 'also matches' : x.reason}\n`;
            if (others.length > MAX) text += `  ... and ${others.length - MAX} more (use --json for all)\n`;
          }
          ctx.stdout.write(text);
        },
        { readonly: true },
      );
    });
}
