// What each dependency adds to a Node process's RSS when loaded, in the order a sidecar loads
// them (undici first: the Node forwarder loads it too), median of several fresh processes.
// Plain JavaScript, so tsx's own cost is not mixed in (it is measured as a row of its own).
//
//   node bench/modcost.mjs [--runs 5]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const ORDER = ['undici', 'better-sqlite3', 'commander', 'zod', 'pino', 'prom-client', 'http-cache-semantics', 'yaml', '@peculiar/x509'];

if (process.argv[2] === '--child') {
  // zod as store/zod.ts loads it (CommonJS); @peculiar/x509 after reflect-metadata, as store/x509.ts does.
  const require = createRequire(import.meta.url);
  const kb = () => {
    const s = readFileSync('/proc/self/status', 'utf8');
    const v = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)[1]);
    return [v('VmRSS'), v('RssAnon'), v('RssFile')];
  };
  const rows = [['node alone', ...kb()]];
  let prev = kb();
  if (process.argv[3] === 'tsx') {
    const { register } = await import('tsx/esm/api');
    register();
    const now = kb();
    rows.push(['tsx (registered)', ...now.map((x, i) => x - prev[i])]);
    prev = now;
  }
  for (const m of ORDER) {
    if (m === 'zod') require('zod');
    else if (m === '@peculiar/x509') {
      await import('reflect-metadata');
      await import('@peculiar/x509');
    } else await import(m);
    const now = kb();
    rows.push([m, ...now.map((x, i) => x - prev[i])]);
    prev = now;
  }
  process.stdout.write(JSON.stringify(rows));
} else {
  const i = process.argv.indexOf('--runs');
  const runs = i > 0 ? Number(process.argv[i + 1]) : 5;
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const tables = [];
  for (let r = 0; r < runs; r++) {
    for (const mode of ['', 'tsx']) {
      const out = spawnSync(process.execPath, [new URL(import.meta.url).pathname, '--child', mode], { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname });
      if (out.status !== 0) throw new Error(out.stderr);
      tables.push({ mode, rows: JSON.parse(out.stdout) });
    }
  }
  const names = tables.find((t) => t.mode === 'tsx').rows.map((r) => r[0]);
  console.log(`node ${process.version}, median of ${runs} fresh processes; KiB added by each load, in order (the first row: the process before any load)\n`);
  console.log('| module | RSS | anon | file |');
  console.log('|---|---:|---:|---:|');
  for (const name of names) {
    const pick = tables.filter((t) => (name === 'tsx (registered)' ? t.mode === 'tsx' : t.mode === '')).map((t) => t.rows.find((r) => r[0] === name));
    console.log(`| ${name} | ${[1, 2, 3].map((c) => median(pick.map((r) => r[c])).toLocaleString('en-US')).join(' | ')} |`);
  }
}
