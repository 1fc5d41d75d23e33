/**
 * An active attacker on the untrusted network between outer and inner (protocol-reference
 * §9): a TCP pass-through that, once armed, lets the next request reach the inner, drops the
 * inner's real answer and sends the outer a forged plaintext `Sws-Key-State: exchange-needed`
 * instead. The key-state header is not authenticated, so this is exactly what an attacker can
 * do; the outer must not answer it by running a non-idempotent request a second time.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface Forger {
  readonly url: string;
  /** The next answer the inner sends, on any connection, is replaced by a forged exchange-needed. Resolves when it was. */
  armExchangeNeeded(): Promise<void>;
  close(): Promise<void>;
}

const FORGED_BODY = JSON.stringify({ type: 'urn:sws:error:SWS_ERR_UNKNOWN_SESSION', title: 'unknown session', status: 409, code: 'SWS_ERR_UNKNOWN_SESSION' });
const FORGED =
  'HTTP/1.1 409 Conflict\r\ncontent-type: application/problem+json\r\ncache-control: no-store\r\nsws-version: 1\r\nsws-key-state: exchange-needed\r\n' +
  `content-length: ${Buffer.byteLength(FORGED_BODY)}\r\nconnection: close\r\n\r\n${FORGED_BODY}`;

export async function startForger(target: { host: string; port: number }): Promise<Forger> {
  const sockets = new Set<Socket>();
  let armed: (() => void) | undefined;
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    client.on('data', (d: Buffer) => upstream.write(d));
    upstream.on('data', (d: Buffer) => {
      if (armed) {
        const done = armed;
        armed = undefined;
        // The real answer is dropped; the outer gets the forgery, then the connection ends.
        upstream.destroy();
        client.end(FORGED, done);
        return;
      }
      client.write(d);
    });
    const end = () => (client.destroy(), upstream.destroy(), sockets.delete(client), sockets.delete(upstream));
    client.on('close', end).on('error', end);
    upstream.on('close', () => {
      if (!client.writableEnded) end();
    }).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    armExchangeNeeded: () => new Promise<void>((r) => (armed = r)),
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
