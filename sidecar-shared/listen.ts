/** Parsing HOST:PORT and listening with a clear error; port 0 asks the OS for a free port. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SwsError } from '../core/errors.ts';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * `HOST:PORT`, `[v6]:PORT` or `:PORT` (all interfaces) → where a listener binds; port 0 asks the
 * OS for a free port. A bad value is a usage error (exit 2) naming `flag`.
 */
export function parseListen(value: string, flag: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(value);
  if (!m) throw new SwsError('SWS_ERR_USAGE', `${flag}: must be HOST:PORT (for example 127.0.0.1:8080, [::1]:8080 or :8080), got ${JSON.stringify(value.slice(0, 100))}`);
  const port = Number(m[3]);
  if (port > 65535) throw new SwsError('SWS_ERR_USAGE', `${flag}: the port must be 0 to 65535, got ${port}`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export function listen(server: Server, addr: ListenAddress): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new SwsError('SWS_ERR_LISTEN', `cannot listen on ${addr.host}:${addr.port}: ${err.code ?? err.message}`));
    };
    server.once('error', onError);
    server.listen(addr.port, addr.host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

export function formatAddress(a: AddressInfo): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
