/**
 * What operators would run instead of sws, set up on the fly on loopback: certificates from
 * `openssl` (a throw-away CA, a server and a client certificate), an nginx → nginx pair with
 * mutual TLS between the hops and a stunnel pair (client mode → server mode requiring client
 * certificates). Layout for both: client → hop1 (plain HTTP) → hop2 (over mTLS) → origin.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { childPids, freePort, run, startProcess, waitPort, type Started } from './harness.ts';

export interface Certs {
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

async function openssl(args: string[]): Promise<void> {
  const r = await run('openssl', args);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** RSA-2048 CA, server (localhost, 127.0.0.1) and client certificates, valid two days. */
export async function makeCerts(dir: string): Promise<Certs> {
  const p = (n: string) => join(dir, n);
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=sws bench CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  for (const [name, eku, san] of [
    ['server', 'serverAuth', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    ['client', 'clientAuth', 'subjectAltName=DNS:bench-client'],
  ] as const) {
    await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${name === 'server' ? 'localhost' : 'bench-client'}`]);
    writeFileSync(p(`${name}.ext`), `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=${eku}\n${san}\n`);
    await openssl(['x509', '-req', '-in', p(`${name}.csr`), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p(`${name}.crt`), '-days', '2', '-extfile', p(`${name}.ext`)]);
  }
  return { ca: p('ca.crt'), serverCert: p('server.crt'), serverKey: p('server.key'), clientCert: p('client.crt'), clientKey: p('client.key') };
}

export interface Pair {
  /** Where the client connects (plain HTTP, origin-form requests). */
  readonly port: number;
  /** The proxy processes whose peak RSS is reported, by label. */
  pids(): { label: string; pid: number }[];
  stop(): Promise<void>;
}

/**
 * nginx → nginx, one worker process each (one core per hop, like each Node process).
 * Keep-alive on both hops, access logs on (as shipped), no buffering of request bodies to
 * disk, response buffering in memory only (no temp files), TLS 1.3 between the hops with the
 * client certificate required and verified both ways.
 */
export async function startNginxPair(dir: string, certs: Certs, originPort: number): Promise<Pair> {
  const [p1, p2] = [await freePort(), await freePort()];
  const root = process.getuid?.() === 0;
  const conf = (name: string, listen: string, upstream: string, extra: string) => {
    const d = join(dir, name);
    mkdirSync(join(d, 'tmp'), { recursive: true });
    writeFileSync(
      join(d, 'nginx.conf'),
      `${root ? 'user root;\n' : ''}worker_processes 1;
daemon off;
master_process on;
pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
events { worker_connections 4096; }
http {
  access_log ${d}/access.log;
  client_body_temp_path ${d}/tmp/body;
  proxy_temp_path ${d}/tmp/proxy;
  fastcgi_temp_path ${d}/tmp/fastcgi;
  uwsgi_temp_path ${d}/tmp/uwsgi;
  scgi_temp_path ${d}/tmp/scgi;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  client_max_body_size 0;
  upstream next {
    server ${upstream};
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    ${listen}
    location / {
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_request_buffering off;
      proxy_buffer_size 64k;
      proxy_buffers 16 64k;
      proxy_busy_buffers_size 128k;
      proxy_max_temp_file_size 0;
${extra}
    }
  }
}
`,
    );
    return join(d, 'nginx.conf');
  };
  const c2 = conf('nginx-hop2', `listen 127.0.0.1:${p2} ssl;
    ssl_protocols TLSv1.3;
    ssl_certificate ${certs.serverCert};
    ssl_certificate_key ${certs.serverKey};
    ssl_client_certificate ${certs.ca};
    ssl_verify_client on;`, `127.0.0.1:${originPort}`, '      proxy_pass http://next;');
  const c1 = conf('nginx-hop1', `listen 127.0.0.1:${p1};`, `127.0.0.1:${p2}`, `      proxy_pass https://next;
      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_certificate ${certs.clientCert};
      proxy_ssl_certificate_key ${certs.clientKey};
      proxy_ssl_trusted_certificate ${certs.ca};
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_session_reuse on;`);
  const hop2 = startProcess('nginx', ['-e', join(dir, 'nginx-hop2', 'error.log'), '-c', c2, '-p', join(dir, 'nginx-hop2')]);
  const hop1 = startProcess('nginx', ['-e', join(dir, 'nginx-hop1', 'error.log'), '-c', c1, '-p', join(dir, 'nginx-hop1')]);
  await waitPort(p2, 'nginx hop2', hop2);
  await waitPort(p1, 'nginx hop1', hop1);
  const workers = (s: Started) => childPids(s.pid);
  return {
    port: p1,
    pids: () => [
      ...workers(hop1).map((pid) => ({ label: 'hop1 worker', pid })),
      ...workers(hop2).map((pid) => ({ label: 'hop2 worker', pid })),
    ],
    stop: async () => {
      await Promise.all([hop1.stop(), hop2.stop()]);
    },
  };
}

/** stunnel client mode (plain in, TLS out with a client certificate) → stunnel server mode (client certificate required). */
export async function startStunnelPair(dir: string, certs: Certs, originPort: number): Promise<Pair> {
  const [p1, p2] = [await freePort(), await freePort()];
  const common = (name: string) => `foreground = yes
pid =
debug = warning
output = ${join(dir, `${name}.log`)}
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
`;
  const serverConf = join(dir, 'stunnel-server.conf');
  writeFileSync(
    serverConf,
    `${common('stunnel-server')}
[hop2]
accept = 127.0.0.1:${p2}
connect = 127.0.0.1:${originPort}
cert = ${certs.serverCert}
key = ${certs.serverKey}
CAfile = ${certs.ca}
verifyChain = yes
requireCert = yes
sslVersionMin = TLSv1.3
`,
  );
  const clientConf = join(dir, 'stunnel-client.conf');
  writeFileSync(
    clientConf,
    `${common('stunnel-client')}
[hop1]
client = yes
accept = 127.0.0.1:${p1}
connect = 127.0.0.1:${p2}
cert = ${certs.clientCert}
key = ${certs.clientKey}
CAfile = ${certs.ca}
verifyChain = yes
checkHost = localhost
sslVersionMin = TLSv1.3
`,
  );
  const hop2 = startProcess('stunnel', [serverConf]);
  const hop1 = startProcess('stunnel', [clientConf]);
  await waitPort(p2, 'stunnel server', hop2);
  await waitPort(p1, 'stunnel client', hop1);
  return {
    port: p1,
    pids: () => [
      { label: 'client mode', pid: hop1.pid },
      { label: 'server mode', pid: hop2.pid },
    ],
    stop: async () => {
      await Promise.all([hop1.stop(), hop2.stop()]);
    },
  };
}
