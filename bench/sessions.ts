/**
 * Memory per idle session (issue 7: ≤ 2 KiB per idle session at 10,000 sessions).
 *
 *   node --expose-gc --import tsx bench/sessions.ts [--sessions 10000]
 *
 * The real protocol code on both ends, in one process, no HTTP: N outer channels (one user
 * each, sharing one RSA key so that key generation does not dominate) each make one exchange
 * and one 1 KiB round trip with one inner endpoint, then sit idle. Both ends use the node:crypto
 * AEAD and KDF backends the sidecars inject. Heap and RSS are read after a full GC before,
 * with every session open, after the outer channels are dropped (which separates the inner's
 * share from the outer's: channels, key rotation state, session keys), and after the inner's
 * exchange-replay entries are dropped too. The bench keeps those in memory
 * (MemoryExchangeReplayGuard); the inner sidecar keeps them in SQLite on disk
 * (store/replay.ts), so the inner's figure without them is what the sidecar holds in memory.
 *
 * "heap+external" is heapUsed + external; ArrayBuffer contents are already part of external.
 */
import { InnerEndpoint, MemoryExchangeReplayGuard, OuterChannel, parseRekeyPolicy, toHex, type ExchangeReplayGuard } from '../core/index.ts';
import { party } from '../test/helpers/keys.ts';
import { deliver, getHead, keyRing, ORIGIN, collect } from '../test/helpers/protocol.ts';
import { nodeAead } from '../sidecar-shared/node-aead.ts';
import { nodeKdf } from '../sidecar-shared/node-kdf.ts';

const argv = process.argv.slice(2);
const N = Number(argv[argv.indexOf('--sessions') + 1] ?? 10_000) || 10_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc --import tsx bench/sessions.ts');

/** Full GCs, with a turn of the event loop after each so finalizers run (key slots are freed in one). */
async function settle(): Promise<{ heap: number; rss: number }> {
  for (let i = 0; i < 3; i++) {
    gc!();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const m = process.memoryUsage();
  return { heap: m.heapUsed + m.external, rss: m.rss };
}

/** The in-memory guard behind a handle the bench can empty, to weigh the replay entries alone. */
class ReplayEntries implements ExchangeReplayGuard {
  guard = new MemoryExchangeReplayGuard();
  remember(id: Uint8Array, expiresAt: number, now: number): boolean {
    return this.guard.remember(id, expiresAt, now);
  }
}

const [inner, user] = await Promise.all([party('inner'), party('user')]);
const kid = toHex(user.pub.keyId);
const replay = new ReplayEntries();
const endpoint = new InnerEndpoint({ keys: keyRing(inner), clients: { lookup: (_name, k) => (k === kid ? user.pub : undefined) }, replay, aead: nodeAead, kdf: nodeKdf });
const body = new Uint8Array(1024).fill(7);
// Parsed once and shared by every channel, as the outer sidecar does with its configured policy.
const policy = parseRekeyPolicy('destination');

const before = await settle();
let channels: OuterChannel[] = [];
const started = performance.now();
const BATCH = 8;
for (let i = 0; i < N; i += BATCH) {
  await Promise.all(
    Array.from({ length: Math.min(BATCH, N - i) }, async (_, j) => {
      const ch = new OuterChannel({ user: { name: `user${i + j}`, key: user.priv }, inner: inner.pub, policy, aead: nodeAead, kdf: nodeKdf });
      const call = await ch.prepare(ORIGIN);
      const r = await deliver(call, endpoint, [await collect(call.seal({ ...getHead('/x'), method: 'PUT' }, body))]);
      if (r.kind !== 'ok') throw new Error(`round trip ${i + j} refused: ${r.refusal.code}`);
      channels.push(ch);
    }),
  );
}
const seconds = (performance.now() - started) / 1000;
const open = await settle();
const sessions = endpoint.sessions.size;
channels = [];
const innerOnly = await settle();
replay.guard = new MemoryExchangeReplayGuard();
const innerNoReplay = await settle();

const kib = (b: number) => (b / 1024).toFixed(2);
console.log(`sessions: ${sessions} at the inner, ${N} outer channels; ${N} exchanges in ${seconds.toFixed(1)} s`);
console.log(`both ends, per idle session: ${kib((open.heap - before.heap) / N)} KiB heap+external, ${kib((open.rss - before.rss) / N)} KiB RSS`);
console.log(`inner, per session, session table + in-memory exchange-replay entry: ${kib((innerOnly.heap - before.heap) / sessions)} KiB heap+external`);
console.log(`inner, per session, session table only (the sidecar's replay entries are on disk): ${kib((innerNoReplay.heap - before.heap) / sessions)} KiB heap+external`);
console.log(`outer only (channel, rotation state, keys), per channel: ${kib((open.heap - innerOnly.heap) / N)} KiB heap+external`);
