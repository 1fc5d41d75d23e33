/**
 * Summarizes V8 .cpuprofile files (from `node --cpu-prof`): self time by function and by
 * source (file or package), and inclusive time for chosen functions.
 *
 *   npx tsx bench/cpuprofile.ts FILE.cpuprofile [--top 30]
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Row {
  readonly name: string;
  readonly selfMs: number;
  readonly share: number;
}

export interface Summary {
  readonly totalMs: number;
  /** Wall time minus idle: what the process spent on the CPU (µs-sampled). */
  readonly busyMs: number;
  readonly byFunction: Row[];
  readonly bySource: Row[];
  /** Inclusive (total) time by function: samples with the function anywhere on their stack. */
  readonly byFunctionTotal: Row[];
  inclusive(match: (f: CallFrame) => boolean): number;
}

const ROOT = /\/work\/[^/]+\/|^file:\/\/\/work\/[^/]+\//;

/** A short label for where a function lives: a package name, a project file, or node:internal. */
export function sourceOf(url: string): string {
  if (!url) return '(native/V8)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) {
    const m = /^node:internal\/(?:deps\/)?([^/]+(?:\/[^/]+)?)/.exec(url);
    return `node:${m ? m[1] : url.slice(5)}`;
  }
  return url.replace(/^file:\/\//, '').replace(ROOT, '');
}

/**
 * `window` (µs, the monotonic clock of process.hrtime, which V8's profile timestamps share)
 * keeps only the samples taken inside it, e.g. the load phase without start-up.
 */
export function summarize(file: string, window?: { fromUs: number; toUs: number }): Summary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const self = new Map<number, number>();
  let ts = p.startTime;
  let first = Infinity;
  let last = -Infinity;
  for (let i = 0; i < p.samples.length; i++) {
    ts += p.timeDeltas[i] ?? 0;
    if (window && (ts < window.fromUs || ts > window.toUs)) continue;
    // A sample's delta is the time since the previous one: attribute it to this sample's node.
    const d = p.timeDeltas[i + 1] ?? 0;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + d);
    first = Math.min(first, ts);
    last = Math.max(last, ts);
  }
  const totalUs = window ? Math.max(0, last - first) : p.endTime - p.startTime;
  let idleUs = 0;
  const fn = new Map<string, number>();
  const src = new Map<string, number>();
  for (const [id, us] of self) {
    const cf = byId.get(id)!.callFrame;
    if (cf.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const where = sourceOf(cf.url);
    const key = `${cf.functionName || '(anonymous)'}  ${where}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    src.set(where, (src.get(where) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  // Inclusive: walk each sampled node's stack once, counting each function key once per stack.
  const total = new Map<string, number>();
  const keyOf = (cf: CallFrame) => `${cf.functionName || '(anonymous)'}  ${sourceOf(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
  for (const [id, us] of self) {
    if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
    const seen = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const cf = byId.get(n)!.callFrame;
      if (cf.functionName === '(root)') break;
      const k = keyOf(cf);
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + us);
    }
  }
  const rows = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, selfMs: us / 1000, share: us / busyUs }));
  return {
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    byFunction: rows(fn),
    bySource: rows(src),
    byFunctionTotal: rows(total),
    inclusive(match) {
      // Time of samples with a matching frame anywhere on their stack (counted once per sample).
      let us = 0;
      const memo = new Map<number, boolean>();
      const hit = (id: number): boolean => {
        const m = memo.get(id);
        if (m !== undefined) return m;
        const n = byId.get(id)!;
        const par = parent.get(id);
        const r = match(n.callFrame) || (par !== undefined && hit(par));
        memo.set(id, r);
        return r;
      };
      for (const [id, t] of self) if (hit(id)) us += t;
      return us / 1000;
    },
  };
}

export function formatRows(rows: readonly Row[], top: number): string {
  return rows
    .slice(0, top)
    .map((r) => `${(r.share * 100).toFixed(1).padStart(5)} %  ${r.selfMs.toFixed(0).padStart(7)} ms  ${r.name}`)
    .join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const files = process.argv.slice(2).filter((a) => a.endsWith('.cpuprofile'));
  const ti = process.argv.indexOf('--top');
  const top = ti > 0 ? Number(process.argv[ti + 1]) : 30;
  for (const f of files) {
    const s = summarize(f);
    console.log(`\n== ${f}: ${s.totalMs.toFixed(0)} ms wall, ${s.busyMs.toFixed(0)} ms busy`);
    console.log('-- self time by source');
    console.log(formatRows(s.bySource, 15));
    console.log('-- self time by function');
    console.log(formatRows(s.byFunction, top));
    const grep = process.argv.indexOf('--total');
    if (grep > 0) {
      const re = new RegExp(process.argv[grep + 1] ?? '.');
      console.log(`-- inclusive time by function matching ${re}`);
      console.log(formatRows(s.byFunctionTotal.filter((r) => re.test(r.name)), top));
    }
  }
}
