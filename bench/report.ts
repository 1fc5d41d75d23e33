/**
 * Turns the benchmark's results into the markdown tables of docs/PERFORMANCE.md (also
 * printed). The generated part sits between markers, so hand-written notes (the profile
 * findings) around it survive a re-run.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fmtNum, fmtStat, type Stat } from './harness.ts';
import type { Setup } from './setups.ts';

export interface SmallResult {
  readonly rps: Stat;
  readonly p50: Stat;
  readonly p99: Stat;
  readonly errors: number;
  readonly exchangesPerSec?: Stat;
}

export interface MemResult {
  readonly label: string;
  /** VmHWM after a 1 MiB download + upload on fresh processes. */
  readonly afterSmallBody: number;
  /** VmHWM after then moving a big body (1 GiB full, 256 MiB quick) each way. */
  readonly afterBigBody: number;
  /** VmHWM at the end of every test of the setup. */
  readonly peak: number;
}

export interface SetupResult {
  readonly setup: Setup;
  readonly small: Map<number, SmallResult>;
  down?: Stat;
  up?: Stat;
  mem: MemResult[];
  sessions?: number;
  error?: string;
}

export interface RsaResult {
  readonly seqSign: Stat;
  readonly seqDecrypt: Stat;
  readonly parSign: Stat;
  readonly parDecrypt: Stat;
  readonly inFlight: number;
}

export interface Report {
  readonly command: string;
  readonly quick: boolean;
  readonly date: string;
  readonly facts: [string, string][];
  readonly method: string[];
  readonly conns: readonly number[];
  readonly bigBody: number;
  readonly bulkBody: number;
  readonly results: SetupResult[];
  readonly rsa: RsaResult;
  readonly elapsedS: number;
}

const MiB = 1048576;
const mib = (b: number) => (b > 0 ? fmtNum(b / MiB, 0) : '—');
const pct = (x: number) => (Number.isFinite(x) ? `${fmtNum(x * 100, 0)} %` : '—');
const times = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '—');

function table(head: string[], rows: string[][]): string {
  const out = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const r of rows) out.push(`| ${r.join(' | ')} |`);
  return out.join('\n');
}

/** Exchanges/s the RSA private operations alone allow: 2 PSS signs + 1 OAEP decrypt per exchange, all cores. */
export function rsaLimit(rsa: RsaResult, parallel = true): number {
  const s = parallel ? rsa.parSign.median : rsa.seqSign.median;
  const d = parallel ? rsa.parDecrypt.median : rsa.seqDecrypt.median;
  return 1 / (2 / s + 1 / d);
}

export function render(r: Report): string {
  const by = (kind: string, policy?: string) => r.results.find((x) => x.setup.kind === kind && (policy === undefined || x.setup.policy === policy));
  const fwd = by('forwarder');
  const ngx = by('nginx');
  const stn = by('stunnel');
  const parts: string[] = [];
  parts.push(`Command: \`${r.command}\` (${r.quick ? 'quick' : 'full'} mode) — ${r.date}, ${fmtNum(r.elapsedS, 0)} s.`);
  parts.push('');
  parts.push(table(['machine', ''], r.facts.map(([k, v]) => [k, v])));
  parts.push('');
  parts.push(...r.method.map((m) => `- ${m}`));

  // ---- small requests
  parts.push('', '### Small requests: 1 KiB responses, keep-alive, wrk', '');
  const sh = ['setup'];
  for (const c of r.conns) sh.push(`req/s @${c}`, `p50 ms @${c}`, `p99 ms @${c}`);
  sh.push('errors');
  parts.push(
    table(
      sh,
      r.results.map((x) => {
        const row = [x.setup.name];
        let errors = 0;
        for (const c of r.conns) {
          const s = x.small.get(c);
          row.push(fmtStat(s?.rps), fmtStat(s?.p50, 2), fmtStat(s?.p99, 2));
          errors += s?.errors ?? 0;
        }
        row.push(x.error ? `failed: ${x.error.split('\n')[0]!.slice(0, 80)}` : String(errors));
        return row;
      }),
    ),
  );

  // ---- bulk
  parts.push('', `### Bulk: one ${mib(r.bulkBody)} MiB body, MB/s (10⁶ octets/s, whole transfer, curl)`, '');
  parts.push(table(['setup', 'download MB/s', 'upload MB/s'], r.results.map((x) => [x.setup.name, fmtStat(x.down), fmtStat(x.up)])));

  // ---- ratios
  const ratioCols = (x: SetupResult, ref: SetupResult | undefined): string[] => {
    const cols: string[] = [];
    for (const c of r.conns) cols.push(pct((x.small.get(c)?.rps.median ?? NaN) / (ref?.small.get(c)?.rps.median ?? NaN)));
    for (const c of r.conns) cols.push(times((x.small.get(c)?.p99.median ?? NaN) / (ref?.small.get(c)?.p99.median ?? NaN)));
    cols.push(pct((x.down?.median ?? NaN) / (ref?.down?.median ?? NaN)), pct((x.up?.median ?? NaN) / (ref?.up?.median ?? NaN)));
    return cols;
  };
  const rh = ['setup'];
  for (const ref of ['Node fwd', 'nginx mTLS']) {
    for (const c of r.conns) rh.push(`req/s @${c} vs ${ref}`);
    for (const c of r.conns) rh.push(`p99 @${c} vs ${ref}`);
    rh.push(`down vs ${ref}`, `up vs ${ref}`);
  }
  parts.push('', '### Ratios (same run): against the Node forwarder | against nginx → nginx mTLS', '');
  parts.push(table(rh, r.results.filter((x) => x.setup.kind !== 'direct').map((x) => [x.setup.name, ...ratioCols(x, fwd), ...ratioCols(x, ngx)])));

  // ---- key exchanges
  const limit = rsaLimit(r.rsa);
  const limitSeq = rsaLimit(r.rsa, false);
  parts.push('', '### Key exchanges', '');
  parts.push(
    table(
      ['raw RSA-2048 (this process, faster of WebCrypto and node:crypto)', '1 in flight', `${r.rsa.inFlight} in flight`],
      [
        ['RSA-PSS-SHA256 sign, ops/s', fmtStat(r.rsa.seqSign), fmtStat(r.rsa.parSign)],
        ['RSA-OAEP-SHA256 decrypt, ops/s', fmtStat(r.rsa.seqDecrypt), fmtStat(r.rsa.parDecrypt)],
        ['exchanges/s the RSA ops alone allow (2 signs + 1 decrypt each)', fmtNum(limitSeq), fmtNum(limit)],
      ],
    ),
  );
  parts.push('');
  const kh = ['sws policy'];
  for (const c of r.conns) kh.push(`req/s @${c}`, `exchanges/s @${c}`);
  kh.push(`best exchanges/s vs RSA limit (${r.rsa.inFlight} in flight)`, 'inner sessions after');
  parts.push(
    table(
      kh,
      r.results
        .filter((x) => x.setup.kind === 'sws')
        .map((x) => {
          const row = [x.setup.policy ?? ''];
          let best = 0;
          for (const c of r.conns) {
            const s = x.small.get(c);
            row.push(fmtStat(s?.rps), fmtStat(s?.exchangesPerSec));
            best = Math.max(best, s?.exchangesPerSec?.median ?? 0);
          }
          row.push(x.setup.policy === 'request' ? pct(best / limit) : '—', x.sessions === undefined ? '—' : fmtNum(x.sessions));
          return row;
        }),
    ),
  );
  const dest = by('sws', 'destination');
  const req = by('sws', 'request');
  if (dest && req) {
    const c = r.conns[0]!;
    const d = dest.small.get(c)?.rps.median ?? NaN;
    const q = req.small.get(c)?.rps.median ?? NaN;
    parts.push('', `Claim 8 as a number: reusing the session key (\`destination\`) serves ${times(d / q)} the requests/s of exchanging on every request (\`request\`) at ${c} connections.`);
  }

  // ---- memory
  parts.push('', `### Memory: peak RSS (VmHWM) of each proxy process, MiB`, '');
  parts.push(
    table(
      ['setup', 'process', 'after 1 MiB each way', `after ${mib(r.bigBody)} MiB each way`, 'growth', 'peak, all tests'],
      r.results.flatMap((x) => x.mem.map((m) => [x.setup.name, m.label, mib(m.afterSmallBody), mib(m.afterBigBody), m.afterBigBody && m.afterSmallBody ? `${fmtNum((m.afterBigBody - m.afterSmallBody) / MiB, 1)}` : '—', mib(m.peak)])),
    ),
  );

  // ---- targets
  parts.push('', '### Targets (issues 4 and 7), sws `destination` (warm session)', '');
  const rows: string[][] = [];
  const check = (what: string, value: number, want: string, ok: boolean | undefined) => rows.push([what, Number.isFinite(value) ? value.toFixed(2) : '—', want, ok === undefined || !Number.isFinite(value) ? '—' : ok ? 'met' : '**not met**']);
  if (dest && fwd) {
    for (const c of r.conns) {
      const v = (dest.small.get(c)?.rps.median ?? NaN) / (fwd.small.get(c)?.rps.median ?? NaN);
      check(`req/s @${c} / Node forwarder`, v, '≥ 0.70 (issue 4: ≥ 0.60)', v >= 0.7);
    }
    for (const c of r.conns) {
      const v = (dest.small.get(c)?.p99.median ?? NaN) / (fwd.small.get(c)?.p99.median ?? NaN);
      check(`p99 @${c} / Node forwarder`, v, '≤ 2', v <= 2);
    }
    const dv = (dest.down?.median ?? NaN) / (fwd.down?.median ?? NaN);
    const uv = (dest.up?.median ?? NaN) / (fwd.up?.median ?? NaN);
    check('download MB/s / Node forwarder', dv, '≥ 0.80 (issue 4: ≥ 0.70)', dv >= 0.8);
    check('upload MB/s / Node forwarder', uv, '≥ 0.80 (issue 4: ≥ 0.70)', uv >= 0.8);
  }
  if (dest && stn) {
    const dv = (dest.down?.median ?? NaN) / (stn.down?.median ?? NaN);
    const uv = (dest.up?.median ?? NaN) / (stn.up?.median ?? NaN);
    check('download MB/s / stunnel pair', dv, '≥ 1', dv >= 1);
    check('upload MB/s / stunnel pair', uv, '≥ 1', uv >= 1);
  }
  if (req) {
    const best = Math.max(...r.conns.map((c) => req.small.get(c)?.exchangesPerSec?.median ?? 0));
    check(`exchanges/s (request policy) / RSA limit`, best / limit, '≥ 0.80', best / limit >= 0.8);
  }
  if (dest) {
    const fwdPeak = Math.max(0, ...(fwd?.mem.map((m) => m.peak) ?? []));
    for (const m of dest.mem) {
      if (m.afterBigBody && m.afterSmallBody) check(`${m.label} RSS growth 1 MiB → ${mib(r.bigBody)} MiB body, MiB`, (m.afterBigBody - m.afterSmallBody) / MiB, '≤ 20', m.afterBigBody - m.afterSmallBody <= 20 * MiB);
      if (fwdPeak) check(`${m.label} peak RSS / Node forwarder's largest hop`, m.peak / fwdPeak, '≤ 1 (issue 4)', m.peak <= fwdPeak);
    }
  }
  parts.push(table(['figure', 'measured', 'target', ''], rows));
  return parts.join('\n');
}

const BEGIN = '<!-- bench:begin (generated by `npm run bench`; edits inside are overwritten) -->';
const END = '<!-- bench:end -->';

/** Writes the generated part into `file`, keeping whatever surrounds the markers. */
export function writeReport(file: string, body: string): void {
  const generated = `${BEGIN}\n${body}\n${END}`;
  let doc: string;
  if (existsSync(file)) {
    const old = readFileSync(file, 'utf8');
    const a = old.indexOf(BEGIN.slice(0, 20));
    const b = old.indexOf(END);
    doc = a >= 0 && b > a ? old.slice(0, a) + generated + old.slice(b + END.length) : `${old.trimEnd()}\n\n${generated}\n`;
  } else {
    doc = `# Performance

How sws compares, in one run on one machine, with what operators would run instead: the
origin direct, a minimal Node two-hop forwarder (node:http + undici, no crypto: the floor for
any Node proxy pair), nginx → nginx with mutual TLS, a stunnel pair, and the sws chain under
three rekey policies. Reproduce with \`npm run bench\` (full) or \`npm run bench -- --quick\`
(under 5 minutes); it installs nginx, stunnel4, wrk and curl from Debian when missing.

## Results

${generated}
`;
  }
  writeFileSync(file, doc);
}
