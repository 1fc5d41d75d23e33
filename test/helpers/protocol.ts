/** In-process outer ↔ inner wiring for core tests: no HTTP, the real protocol code on both ends. */
import {
  concatBytes,
  InnerEndpoint,
  OuterChannel,
  parseRekeyPolicy,
  toHex,
  type BodySource,
  type ClientDirectory,
  type InnerEndpointOptions,
  type InnerKeyRing,
  type InnerRequest,
  type OuterCall,
  type PublicKeyHandle,
  type RequestHead,
  type ResponseHead,
} from '../../core/index.ts';
import { party, type TestParty } from './keys.ts';

export async function collect(src: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of src) parts.push(c);
  return concatBytes(...parts);
}

export function keyRing(...keys: TestParty[]): InnerKeyRing {
  const m = new Map(keys.map((k) => [toHex(k.priv.keyId), k.priv]));
  return { get: (id) => m.get(id) };
}

export function directory(entries: Record<string, PublicKeyHandle>): ClientDirectory {
  return { lookup: (user, kid) => (entries[user] && toHex(entries[user].keyId) === kid ? entries[user] : undefined) };
}

export const ORIGIN = 'http://intranet.example';

export function getHead(path = '/docs/a', extra: [string, string][] = []): RequestHead {
  return { method: 'GET', scheme: 'http', authority: 'intranet.example', path, headers: [['accept', '*/*'], ...extra] };
}

export interface Pair {
  inner: TestParty;
  alice: TestParty;
  bob: TestParty;
  endpoint: InnerEndpoint;
  alice_: OuterChannel;
  bob_: OuterChannel;
  clock: { now: number };
}

export async function makePair(opts: { policy?: string; endpoint?: Partial<InnerEndpointOptions>; recordSize?: number } = {}): Promise<Pair> {
  const [inner, alice, bob] = await Promise.all([party('inner'), party('alice'), party('bob')]);
  const clock = { now: Date.now() };
  const now = () => clock.now;
  const endpoint = new InnerEndpoint({ keys: keyRing(inner), clients: directory({ alice: alice.pub, bob: bob.pub }), now, ...opts.endpoint });
  const mk = (name: string, p: TestParty) =>
    new OuterChannel({ user: { name, key: p.priv }, inner: inner.pub, policy: parseRekeyPolicy(opts.policy ?? 'destination'), now, ...(opts.recordSize ? { recordSize: opts.recordSize } : {}) });
  return { inner, alice, bob, endpoint, alice_: mk('alice', alice), bob_: mk('bob', bob), clock };
}

export type Responder = (req: InnerRequest, body: Uint8Array) => { head: ResponseHead; body: BodySource };

export const echo: Responder = (req, body) => ({
  head: { status: 200, headers: [['content-type', 'application/octet-stream'], ['x-path', req.head.path]] },
  body,
});

/**
 * One full round trip through both endpoints, buffering bodies (for small tests).
 * Returns the response and what the inner saw; throws whatever either side threw.
 */
export async function roundTrip(channel: OuterChannel, endpoint: InnerEndpoint, head: RequestHead, body: BodySource, responder: Responder = echo, destination = ORIGIN) {
  const call = await channel.prepare(destination);
  const wire = await collect(call.seal(head, body));
  return deliver(call, endpoint, [wire], responder);
}

/** Hands envelope octets to the inner and the answer back to the outer call. */
export async function deliver(call: OuterCall, endpoint: InnerEndpoint, envelope: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, responder: Responder = echo) {
  const env = await endpoint.open(envelope);
  if (env.kind === 'refused') {
    call.refused(env.refusal.keyState, env.refusal.code);
    return { kind: 'refused' as const, refusal: env.refusal, error: env.error };
  }
  const req = await env.readRequest();
  if (req === null) throw new Error('no request in envelope');
  if (req.kind === 'refused') {
    call.refused(req.refusal.keyState, req.refusal.code);
    return { kind: 'refused' as const, refusal: req.refusal, error: req.error };
  }
  const seen = await collect(req.body);
  const answer = responder(req, seen);
  const respWire = concatBytes(...(env.confirm ? [env.confirm] : []), await collect(req.respond(answer.head, answer.body)));
  const opened = await call.open(env.confirm ? 'exchanged' : 'ok', [respWire]);
  const respBody = await collect(opened.body);
  return { kind: 'ok' as const, head: opened.head, body: respBody, seenHead: req.head, seenBody: seen, session: req.session, keyState: call.keyState, call, respWire, reqWire: null };
}
