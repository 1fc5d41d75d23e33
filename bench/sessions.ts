/**
 * Memory per idle session (issue 7: ≤ 2 KiB per idle session at 10,000 sessions).
 *
 *   node --expose-gc --import tsx bench/sessions.ts [--sessions 10000]
 *
 * The real protocol code on both ends, in one process, no HTTP: N outer channels (one user
 * each, sharing one RSA key so that key generation does not dominate) each make one exchange
 * and one 1 KiB round trip with one inner endpoint, then sit idle. Heap and RSS are read after
 * a full GC before, with every session open, and after the outer channels are dropped, which
 * separates the inner's share (its session table and exchange-replay entries) from the
 * outer's (channels, key rotation state, session keys).
 */
import { InnerEndpoint, OuterChannel, parseRekeyPolicy, toHex } from '../core/index.ts';
import { party } from '../test/helpers/keys.ts';
import { deliver, getHead, keyRing, ORIGIN, collect } from '../test/helpers/protocol.ts';
import { nodeAead } from '../sidecar-shared/node-aead.ts';

const argv = process.argv.slice(2);
const N = Number(argv[argv.indexOf('--sessions') + 1] ?? 10_000) || 10_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc --import tsx bench/sessions.ts');

function settle(): { heap: number; rss: number } {
  for (let i = 0; i < 3; i++) gc!();
  const m = process.memoryUsage();
  return { heap: m.heapUsed + m.external + m.arrayBuffers, rss: m.rss };
}

const [inner, user] = await Promise.all([party('inner'), party('user')]);
const kid = toHex(user.pub.keyId);
const endpoint = new InnerEndpoint({ keys: keyRing(inner), clients: { lookup: (_name, k) => (k === kid ? user.pub : undefined) }, aead: nodeAead });
const body = new Uint8Array(1024).fill(7);

const before = settle();
let channels: OuterChannel[] = [];
const started = performance.now();
const BATCH = 8;
for (let i = 0; i < N; i += BATCH) {
  await Promise.all(
    Array.from({ length: Math.min(BATCH, N - i) }, async (_, j) => {
      const ch = new OuterChannel({ user: { name: `user${i + j}`, key: user.priv }, inner: inner.pub, policy: parseRekeyPolicy('destination'), aead: nodeAead });
      const call = await ch.prepare(ORIGIN);
      const r = await deliver(call, endpoint, [await collect(call.seal({ ...getHead('/x'), method: 'PUT' }, body))]);
      if (r.kind !== 'ok') throw new Error(`round trip ${i + j} refused: ${r.refusal.code}`);
      channels.push(ch);
    }),
  );
}
const seconds = (performance.now() - started) / 1000;
const open = settle();
const sessions = endpoint.sessions.size;
channels = [];
const innerOnly = settle();

const kib = (b: number) => (b / 1024).toFixed(2);
console.log(`sessions: ${sessions} at the inner, ${N} outer channels; ${N} exchanges in ${seconds.toFixed(1)} s`);
console.log(`both ends, per idle session: ${kib((open.heap - before.heap) / N)} KiB heap+external, ${kib((open.rss - before.rss) / N)} KiB RSS`);
console.log(`inner only (session table + exchange-replay entry), per session: ${kib((innerOnly.heap - before.heap) / sessions)} KiB heap+external`);
console.log(`outer only (channel, rotation state, keys), per channel: ${kib((open.heap - innerOnly.heap) / N)} KiB heap+external`);
