// Two Node 20 (V8 11.3) patterns that made short-lived per-request objects outlive young
// collections in the sidecars, reproduced outside sws (docs/PERFORMANCE.md "The in-flight set"
// and "Object spreads"). Each case runs 3 s (2 s for the records) under `--trace-gc-nvp` and
// prints what young collections promote.
//
//   node bench/promotion.mjs
//
// Containers: 16 request-like objects in flight, each replaced in turn, held while alive by
// nothing ("none"), a long-lived Set, or array slots cleared on removal. Records: a log record
// built as `{ ...fields, decision, status, ms }` or as a literal with the same keys.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CASES = ['none', 'set', 'slots', 'spread-record', 'literal-record'];
const [, , which] = process.argv;

if (which === undefined) {
  for (const c of CASES) {
    const r = spawnSync(process.execPath, ['--max-semi-space-size=4', '--trace-gc-nvp', fileURLToPath(import.meta.url), c], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    let young = 0;
    let promoted = 0;
    let full = 0;
    for (const line of r.stdout.split('\n')) {
      if (/\bgc=s\b/.test(line)) (young++, (promoted += Number(/\bpromoted=(\d+)/.exec(line)?.[1] ?? 0)));
      else if (/\bgc=m[cs]\b/.test(line)) full++;
    }
    const made = /MADE (\d+)/.exec(r.stdout)?.[1];
    console.log(`${c.padEnd(14)}: ${made} made; ${young} young collections promoting ${(promoted / Math.max(young, 1) / 1024).toFixed(0)} KiB each; ${full} full collections`);
  }
} else if (which.endsWith('-record')) {
  let sink = 0;
  const until = Date.now() + 2000;
  let n = 0;
  while (Date.now() < until) {
    for (let i = 0; i < 1000; i++, n++) {
      const fields = { user: 'alice', method: 'GET', host: 'intranet.example', path: '/1k', keyState: 'ok' };
      const ms = Math.random() * 10;
      const record =
        which === 'spread-record'
          ? { ...fields, decision: 'allow', status: 200, ms }
          : { user: fields.user, method: fields.method, host: fields.host, path: fields.path, keyState: fields.keyState, decision: 'allow', status: 200, ms };
      for (const key in record) sink += key.length; // what the access line does with it
    }
  }
  console.log(`MADE ${n} ${sink > 0}`);
} else {
  const set = new Set();
  const slots = [];
  const free = [];
  const live = new Array(16); // a ring: the oldest in flight is replaced each turn
  const request = (i) => ({ i, fields: new Array(64).fill(i), name: `r${i}`, done: () => i });
  const hold = (r) => {
    if (which === 'set') set.add(r);
    else if (which === 'slots') (r.slot = free.length > 0 ? free.pop() : slots.length), (slots[r.slot] = r);
  };
  const release = (r) => {
    if (which === 'set') set.delete(r);
    else if (which === 'slots') (slots[r.slot] = undefined), free.push(r.slot);
  };
  let n = 0;
  for (; n < 16; n++) (live[n] = request(n)), hold(live[n]);
  const until = Date.now() + 3000;
  while (Date.now() < until) {
    release(live[n % 16]);
    const r = request(n);
    live[n++ % 16] = r;
    hold(r);
    for (let j = 0; j < 20; j++) void { j, garbage: [j, j] }; // what else a request allocates and drops
  }
  console.log(`MADE ${n}`);
}
