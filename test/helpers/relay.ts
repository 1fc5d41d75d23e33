/**
 * A TCP relay that sits on the untrusted network between outer and inner and records every
 * octet both ways (up to a cap), so tests can prove what an eavesdropper sees.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface RecordingRelay {
  readonly url: string;
  /** Everything recorded since the last clear(): both directions interleaved, or one of them. */
  recorded(direction?: 'to-inner' | 'from-inner'): Buffer;
  /** TCP connections the outer opened through the relay since the last clear(). */
  connections(): number;
  clear(): void;
  close(): Promise<void>;
}

export async function startRelay(target: { host: string; port: number }, capBytes = 32 * 1024 * 1024): Promise<RecordingRelay> {
  let chunks: { dir: 'to-inner' | 'from-inner'; data: Buffer }[] = [];
  let size = 0;
  let accepted = 0;
  const sockets = new Set<Socket>();
  const keep = (dir: 'to-inner' | 'from-inner', b: Buffer) => {
    if (size >= capBytes) return;
    chunks.push({ dir, data: Buffer.from(b) });
    size += b.length;
  };
  const server: Server = createServer((client) => {
    accepted++;
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    client.on('data', (d: Buffer) => (keep('to-inner', d), upstream.write(d)));
    upstream.on('data', (d: Buffer) => (keep('from-inner', d), client.write(d)));
    const end = () => (client.destroy(), upstream.destroy(), sockets.delete(client), sockets.delete(upstream));
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    recorded: (dir) => Buffer.concat(chunks.filter((c) => dir === undefined || c.dir === dir).map((c) => c.data)),
    connections: () => accepted,
    clear: () => {
      chunks = [];
      size = 0;
      accepted = 0;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
