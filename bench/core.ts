/**
 * npm run bench:core — what the protocol core costs on this machine, beside the raw
 * WebCrypto limits it is built on (issue: "the core should approach those limits").
 *
 *   raw AES-256-GCM: 1 KiB calls/s; 64 KiB records MB/s sequential and 16 in flight
 *   raw RSA-2048: operations/s (PSS sign and verify, OAEP decrypt and encrypt), WebCrypto
 *         beside node:crypto (synchronous and, for PSS, the libuv-pool callback form)
 *   core: seal+open of a 64 MiB body MB/s (vs raw at the same record size)
 *   core: WebCrypto calls per 1 KiB request+response on a warm session
 *   core: exchanges/s and the RSA operations one exchange costs, with the core's WebCrypto
 *         defaults, with the node:crypto AEAD + SHA-256/HKDF backends, and with those plus the
 *         node:crypto RSA backend (what the sidecars inject)
 *   core: peak RSS while streaming 64 MiB vs 1 GiB
 *
 * Usage: npm run bench:core [-- --quick]
 */
import {
  ByteReader,
  encodeEnvelopeHeader,
  generateRsaKeyPair,
  importAesKey,
  importPrivateKey,
  importPublicKey,
  InnerEndpoint,
  MessageTypes,
  newDirectionState,
  openRequest,
  OuterChannel,
  parseEnvelopeHeader,
  parseRekeyPolicy,
  randomBytes,
  sealRequest,
  toHex,
  type DirectionState,
} from '../core/index.ts';
import { nodeAead } from '../sidecar-shared/node-aead.ts';
import { nodeKdf } from '../sidecar-shared/node-kdf.ts';
import { nodeRsa } from '../sidecar-shared/node-rsa.ts';
import { constants, KeyObject, privateDecrypt, publicEncrypt, sign, verify } from 'node:crypto';

const quick = process.argv.includes('--quick');
const subtle = globalThis.crypto.subtle;

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

async function timeIt(seconds: number, fn: () => Promise<unknown>): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const t0 = performance.now();
  while (performance.now() < end) {
    await fn();
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function runs(k: number, f: () => Promise<number>): Promise<{ median: number; min: number; max: number }> {
  const xs: number[] = [];
  for (let i = 0; i < k; i++) xs.push(await f());
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

function line(label: string, r: { median: number; min: number; max: number }, unit: string, digits = 0): void {
  console.log(`${label.padEnd(58)} ${fmt(r.median, digits).padStart(10)} ${unit.padEnd(10)} (min ${fmt(r.min, digits)}, max ${fmt(r.max, digits)})`);
}

const K = quick ? 3 : 5;
const SECS = quick ? 0.5 : 1.5;

console.log(`sws core benchmark — node ${process.version}, ${quick ? 'quick' : 'full'} mode, median of ${K} runs`);
console.log('');

// ---------------------------------------------------------------- raw WebCrypto
const aes = await importAesKey(randomBytes(32));
const iv = new Uint8Array(12);
const kib = randomBytes(1024);
const rec64 = randomBytes(65536);
const rawSmall = await runs(K, () => timeIt(SECS, () => subtle.encrypt({ name: 'AES-GCM', iv, additionalData: iv }, aes, kib)));
line('raw AES-256-GCM seal, 1 KiB', rawSmall, 'calls/s');
const rawSeq = await runs(K, async () => (await timeIt(SECS, () => subtle.encrypt({ name: 'AES-GCM', iv }, aes, rec64))) * 65536 / 1e6);
line('raw AES-256-GCM seal, 64 KiB records, sequential', rawSeq, 'MB/s');
const rawPar = await runs(K, async () => (await timeIt(SECS, () => Promise.all(Array.from({ length: 16 }, () => subtle.encrypt({ name: 'AES-GCM', iv }, aes, rec64))))) * 16 * 65536 / 1e6);
line('raw AES-256-GCM seal, 64 KiB records, 16 in flight', rawPar, 'MB/s');

const rsa = await generateRsaKeyPair(2048);
const priv = await importPrivateKey(rsa.pkcs8);
const pub = await importPublicKey(rsa.spki);
const msg = randomBytes(64);
const rawSign = await runs(K, () => timeIt(SECS, () => subtle.sign({ name: 'RSA-PSS', saltLength: 32 }, priv.signKey, msg)));
line('raw RSA-2048 PSS sign (private op)', rawSign, 'ops/s');
const wrapped = new Uint8Array(await subtle.encrypt({ name: 'RSA-OAEP' }, pub.encryptKey, randomBytes(32)));
const rawDec = await runs(K, () => timeIt(SECS, () => subtle.decrypt({ name: 'RSA-OAEP' }, priv.decryptKey, wrapped)));
line('raw RSA-2048 OAEP decrypt (private op)', rawDec, 'ops/s');
const rawPar4 = await runs(K, async () => (await timeIt(SECS, () => Promise.all([0, 1, 2, 3].map(() => subtle.sign({ name: 'RSA-PSS', saltLength: 32 }, priv.signKey, msg))))) * 4);
line('raw RSA-2048 private ops, 4 in flight', rawPar4, 'ops/s');
const sig = new Uint8Array(await subtle.sign({ name: 'RSA-PSS', saltLength: 32 }, priv.signKey, msg));
const rawVerify = await runs(K, () => timeIt(SECS, () => subtle.verify({ name: 'RSA-PSS', saltLength: 32 }, pub.verifyKey, sig, msg)));
line('raw RSA-2048 PSS verify (public op)', rawVerify, 'ops/s');
const rawEnc = await runs(K, () => timeIt(SECS, () => subtle.encrypt({ name: 'RSA-OAEP' }, pub.encryptKey, msg.subarray(0, 32))));
line('raw RSA-2048 OAEP encrypt (public op)', rawEnc, 'ops/s');

// The same operations straight on node:crypto (what sidecar-shared/node-rsa.ts calls).
const nodePriv = KeyObject.from(priv.signKey);
const nodePub = KeyObject.from(pub.verifyKey);
const PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
const OAEP = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' };
const signAsync = () => new Promise<Buffer>((resolve, reject) => sign('sha256', msg, { key: nodePriv, ...PSS }, (e, s) => (e ? reject(e) : resolve(s))));
const nodeSign = await runs(K, () => timeIt(SECS, async () => sign('sha256', msg, { key: nodePriv, ...PSS })));
line('raw RSA-2048 PSS sign, node:crypto sync', nodeSign, 'ops/s');
const nodeSignCb = await runs(K, () => timeIt(SECS, signAsync));
line('raw RSA-2048 PSS sign, node:crypto callback (libuv pool)', nodeSignCb, 'ops/s');
const nodeDec = await runs(K, () => timeIt(SECS, async () => privateDecrypt({ key: nodePriv, ...OAEP }, wrapped)));
line('raw RSA-2048 OAEP decrypt, node:crypto (sync only)', nodeDec, 'ops/s');
const nodePar4 = await runs(K, async () => (await timeIt(SECS, () => Promise.all([0, 1, 2, 3].map(signAsync)))) * 4);
line('raw RSA-2048 private ops, node:crypto callback, 4 in flight', nodePar4, 'ops/s');
const nodeVerify = await runs(K, () => timeIt(SECS, async () => verify('sha256', msg, { key: nodePub, ...PSS }, sig)));
line('raw RSA-2048 PSS verify, node:crypto sync', nodeVerify, 'ops/s');
const nodeEnc = await runs(K, () => timeIt(SECS, async () => publicEncrypt({ key: nodePub, ...OAEP }, msg.subarray(0, 32))));
line('raw RSA-2048 OAEP encrypt, node:crypto sync', nodeEnc, 'ops/s');
console.log('');

// ---------------------------------------------------------------- core bulk
async function direction(): Promise<DirectionState> {
  return newDirectionState(await importAesKey(randomBytes(32)), randomBytes(12));
}
const head = { method: 'PUT', scheme: 'http', authority: 'a.example', path: '/x', headers: [] as [string, string][] };

async function bulk(totalBytes: number): Promise<{ mbps: number; peakRss: number }> {
  const dir = await direction();
  const chunk = randomBytes(65536);
  async function* body(): AsyncGenerator<Uint8Array> {
    for (let sent = 0; sent < totalBytes; sent += chunk.length) yield chunk;
  }
  const header = encodeEnvelopeHeader(MessageTypes.request, randomBytes(16), 1, Date.now());
  const wire = sealRequest(dir, header, head, body());
  const reader = new ByteReader((async function* () {
    const first = await wire.next();
    if (!first.done) yield first.value.subarray(38);
    yield* wire;
  })());
  let peak = process.memoryUsage().rss;
  const t0 = performance.now();
  const opened = await openRequest(dir, parseEnvelopeHeader(header.bytes), reader);
  let got = 0;
  for await (const c of opened.body) {
    got += c.length;
    if ((got & 0x3ffffff) === 0) peak = Math.max(peak, process.memoryUsage().rss);
  }
  const secs = (performance.now() - t0) / 1000;
  if (got !== totalBytes) throw new Error('length mismatch');
  return { mbps: totalBytes / secs / 1e6, peakRss: peak };
}
const core64 = await runs(K, async () => (await bulk(64 << 20)).mbps);
line('core seal+open, 64 MiB body (both ends, one process)', core64, 'MB/s');
console.log(`  → per direction the body passes one seal and one open: the raw-equivalent limit is raw/2 = ${fmt(rawSeq.median / 2)} MB/s sequential, ${fmt(rawPar.median / 2)} MB/s pipelined`);
console.log(`  → core reaches ${fmt((core64.median / (rawSeq.median / 2)) * 100)} % of the sequential raw limit`);

// ---------------------------------------------------------------- calls per small round trip, exchange cost
const counts = { encrypt: 0, decrypt: 0, sign: 0, verify: 0, other: 0 };
const byAlg = new Map<string, number>();
for (const op of ['encrypt', 'decrypt', 'sign', 'verify', 'digest', 'importKey', 'deriveBits'] as const) {
  const orig = (subtle as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[op]!.bind(subtle);
  (subtle as unknown as Record<string, unknown>)[op] = (alg: unknown, ...rest: unknown[]) => {
    const name = typeof alg === 'string' ? alg : ((alg as { name?: string })?.name ?? String(alg));
    const key = `${op}:${name}`;
    byAlg.set(key, (byAlg.get(key) ?? 0) + 1);
    return orig(alg, ...rest);
  };
}
const innerKey = priv;
const user = await importPrivateKey((await generateRsaKeyPair(2048)).pkcs8);
const endpointOpts = {
  keys: { get: (id: string) => (id === toHex(innerKey.keyId) ? innerKey : undefined) },
  clients: { lookup: (_name: string, kid: string) => (kid === toHex(user.keyId) ? user.publicKey : undefined) },
};
const endpoint = new InnerEndpoint(endpointOpts);
/** node:crypto AES-GCM and SHA-256/HKDF, RSA still on WebCrypto (what the sidecars ran before node RSA). */
const nodeBackends = { aead: nodeAead, kdf: nodeKdf };
const nodeEndpoint = new InnerEndpoint({ ...endpointOpts, ...nodeBackends });
/** What the sidecars run: every backend on node:crypto. */
const allNodeBackends = { ...nodeBackends, rsa: nodeRsa };
const allNodeEndpoint = new InnerEndpoint({ ...endpointOpts, ...allNodeBackends });

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of it) out.push(c);
  return out;
}
async function roundTrip(channel: OuterChannel, body: Uint8Array, ep: InnerEndpoint = endpoint): Promise<void> {
  const call = await channel.prepare('http://a.example');
  const env = await ep.open(await collect(call.seal({ ...head, method: 'POST' }, body)));
  if (env.kind !== 'envelope') throw new Error('refused');
  const req = await env.readRequest();
  if (!req || req.kind !== 'request') throw new Error('refused');
  await collect(req.body);
  const resp = [...(env.confirm ? [env.confirm] : []), ...(await collect(req.respond({ status: 200, headers: [] }, body)))];
  const opened = await call.open(env.confirm ? 'exchanged' : 'ok', resp);
  await collect(opened.body);
}
const warm = new OuterChannel({ user: { name: 'alice', key: user }, inner: innerKey.publicKey, policy: parseRekeyPolicy('destination') });
await roundTrip(warm, kib);
byAlg.clear();
const N = 200;
for (let i = 0; i < N; i++) await roundTrip(warm, kib);
const perTrip = [...byAlg.entries()].map(([k, v]) => `${k}×${(v / N).toFixed(2)}`).join(', ');
console.log(`WebCrypto calls per 1 KiB request + 1 KiB response (warm session): ${perTrip}`);

const each = new OuterChannel({ user: { name: 'alice', key: user }, inner: innerKey.publicKey, policy: parseRekeyPolicy('request') });
await roundTrip(each, kib);
byAlg.clear();
const M = quick ? 50 : 200;
for (let i = 0; i < M; i++) await roundTrip(each, kib);
const rsaOps = [...byAlg.entries()].filter(([k]) => /RSA/.test(k)).map(([k, v]) => `${k}×${(v / M).toFixed(2)}`).join(', ');
console.log(`RSA operations per exchange (outer + inner): ${rsaOps}`);
const callsPer = (n: number) => [...byAlg.values()].reduce((a, b) => a + b, 0) / n;
console.log(`WebCrypto calls per exchange + 1 KiB round trip, WebCrypto backends: ${fmt(callsPer(M), 1)}`);
const xps = await runs(K, () => timeIt(SECS, () => roundTrip(each, kib)));
line('exchange + 1 KiB round trip, policy `request`, sequential', xps, 'per s');
const rsaBound = 1 / (3 / rawSign.median);
// The same bound from the faster of the two raw rates of every operation, counting the 3 public operations too.
const best = (a: { median: number }, b: { median: number }) => Math.max(a.median, b.median);
const rsaBoundAll = 1 / (2 / best(rawSign, nodeSign) + 1 / best(rawDec, nodeDec) + 2 / best(rawVerify, nodeVerify) + 1 / best(rawEnc, nodeEnc));
console.log(`  → RSA alone allows ${fmt(rsaBound)} exchanges/s sequentially (3 private ops at the raw WebCrypto PSS sign rate); core reaches ${fmt((xps.median / rsaBound) * 100)} %`);
console.log(`  → counting all 6 RSA ops at the faster raw rate of each: ${fmt(rsaBoundAll)} exchanges/s; core reaches ${fmt((xps.median / rsaBoundAll) * 100)} %`);
const rt = await runs(K, () => timeIt(SECS, () => roundTrip(warm, kib)));
line('1 KiB round trip, policy `destination` (warm), sequential', rt, 'per s');
console.log(`  → claim 8: re-keying every request costs ${fmt(rt.median / xps.median, 1)}× the time of reusing the key`);

// The same with the backends the sidecars inject (sidecar-outer/server.ts, sidecar-inner/server.ts).
const eachNode = new OuterChannel({ user: { name: 'alice', key: user }, inner: innerKey.publicKey, policy: parseRekeyPolicy('request'), ...nodeBackends });
const warmNode = new OuterChannel({ user: { name: 'alice', key: user }, inner: innerKey.publicKey, policy: parseRekeyPolicy('destination'), ...nodeBackends });
await roundTrip(eachNode, kib, nodeEndpoint);
await roundTrip(warmNode, kib, nodeEndpoint);
byAlg.clear();
for (let i = 0; i < M; i++) await roundTrip(eachNode, kib, nodeEndpoint);
console.log(`WebCrypto calls per exchange + 1 KiB round trip, node:crypto AEAD + KDF (sidecars): ${fmt(callsPer(M), 1)}`);
const xpsNode = await runs(K, () => timeIt(SECS, () => roundTrip(eachNode, kib, nodeEndpoint)));
line('node backends: exchange + 1 KiB round trip, policy `request`', xpsNode, 'per s');
console.log(`  → core with node AEAD + KDF reaches ${fmt((xpsNode.median / rsaBound) * 100)} % of the RSA-only limit (${fmt((xpsNode.median / rsaBoundAll) * 100)} % of the 6-op one)`);
const rtNode = await runs(K, () => timeIt(SECS, () => roundTrip(warmNode, kib, nodeEndpoint)));
line('node backends: 1 KiB round trip, policy `destination` (warm)', rtNode, 'per s');

// Every backend on node:crypto, RSA included (sidecar-shared/node-rsa.ts).
const eachAllNode = new OuterChannel({ user: { name: 'alice', key: user }, inner: innerKey.publicKey, policy: parseRekeyPolicy('request'), ...allNodeBackends });
await roundTrip(eachAllNode, kib, allNodeEndpoint);
byAlg.clear();
for (let i = 0; i < M; i++) await roundTrip(eachAllNode, kib, allNodeEndpoint);
console.log(`WebCrypto calls per exchange + 1 KiB round trip, node:crypto AEAD + KDF + RSA (sidecars): ${fmt(callsPer(M), 1)}`);
const xpsAllNode = await runs(K, () => timeIt(SECS, () => roundTrip(eachAllNode, kib, allNodeEndpoint)));
line('node backends + node RSA: exchange + 1 KiB round trip, `request`', xpsAllNode, 'per s');
console.log(`  → core with the sidecars' backends reaches ${fmt((xpsAllNode.median / rsaBound) * 100)} % of the RSA-only limit (${fmt((xpsAllNode.median / rsaBoundAll) * 100)} % of the 6-op one)`);
const lanes = 4;
const eachLanes = Array.from({ length: lanes }, () => new OuterChannel({ user: { name: 'alice', key: user }, inner: innerKey.publicKey, policy: parseRekeyPolicy('request'), ...allNodeBackends }));
const xpsAllNodePar = await runs(K, async () => (await timeIt(SECS, () => Promise.all(eachLanes.map((ch) => roundTrip(ch, kib, allNodeEndpoint)))) * lanes));
line(`node backends + node RSA: exchanges, ${lanes} in flight`, xpsAllNodePar, 'per s');
console.log('');

// ---------------------------------------------------------------- memory flat with body size
const small = await bulk(64 << 20);
const large = await bulk((quick ? 256 : 1024) << 20);
console.log(`peak RSS streaming 64 MiB: ${fmt(small.peakRss / 1048576)} MiB; ${quick ? '256 MiB' : '1 GiB'}: ${fmt(large.peakRss / 1048576)} MiB`);
