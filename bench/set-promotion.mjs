// Why the inner keeps its requests in flight in array slots, not a Set (docs/PERFORMANCE.md
// "The in-flight set"): 16 request-like objects in flight, each replaced in turn for 3 s, held
// by a long-lived container while alive. Prints what V8's young collections promote.
//
//   node bench/set-promotion.mjs
//
// Plain JavaScript: it re-runs itself under `--trace-gc-nvp` once per container.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const [, , container] = process.argv;
if (container === undefined) {
  for (const c of ['none', 'set', 'slots']) {
    const r = spawnSync(process.execPath, ['--max-semi-space-size=4', '--trace-gc-nvp', fileURLToPath(import.meta.url), c], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    let young = 0;
    let promoted = 0;
    let full = 0;
    for (const line of r.stdout.split('\n')) {
      if (/\bgc=s\b/.test(line)) (young++, (promoted += Number(/\bpromoted=(\d+)/.exec(line)?.[1] ?? 0)));
      else if (/\bgc=m[cs]\b/.test(line)) full++;
    }
    const done = /REPLACED (\d+)/.exec(r.stdout)?.[1];
    console.log(`${c.padEnd(5)}: ${done} replaced; ${young} young collections promoting ${(promoted / Math.max(young, 1) / 1024).toFixed(0)} KiB each; ${full} full collections`);
  }
} else {
  const set = new Set();
  const slots = [];
  const free = [];
  const live = new Array(16); // a ring: the oldest in flight is replaced each turn
  const request = (i) => ({ i, fields: new Array(64).fill(i), name: `r${i}`, done: () => i });
  const hold = (r) => {
    if (container === 'set') set.add(r);
    else if (container === 'slots') (r.slot = free.length > 0 ? free.pop() : slots.length), (slots[r.slot] = r);
  };
  const release = (r) => {
    if (container === 'set') set.delete(r);
    else if (container === 'slots') (slots[r.slot] = undefined), free.push(r.slot);
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
  console.log(`REPLACED ${n}`);
}
