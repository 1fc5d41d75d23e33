/**
 * The setups the benchmark compares, each started on loopback in front of the same origin:
 * the origin direct, the minimal Node two-hop forwarder, nginx → nginx (mTLS), the stunnel
 * pair, and the real sws chain (built through the CLI by the e2e helpers) under a rekey policy.
 */
import { metricValue, PASSWORDS, startChain, type SidecarProcess } from '../test/helpers/e2e.ts';
import { onCleanup, startNodeScript, type Started } from './harness.ts';
import type { Target } from './load.ts';
import { startNginxPair, startStunnelPair, type Certs } from './peers.ts';

export interface Running {
  readonly target: Target;
  /** Proxy processes whose memory is reported (none for the origin direct). */
  procs(): { label: string; pid: number }[];
  /** sws only: key exchanges completed so far (outer's sws_key_exchanges_total, result ok). */
  exchanges?(): Promise<number>;
  /** sws only: sessions the inner holds. */
  sessions?(): Promise<number>;
  stop(): Promise<void>;
}

export interface Setup {
  readonly name: string;
  readonly kind: 'direct' | 'forwarder' | 'nginx' | 'stunnel' | 'sws';
  readonly policy?: string;
  start(): Promise<Running>;
}

const HOST = 'intranet.example';

function plainTarget(port: number): Target {
  const base = `http://127.0.0.1:${port}`;
  return { connectUrl: base, smallPath: '/1k', url: (p) => `${base}${p}` };
}

export function directSetup(originPort: number): Setup {
  return {
    name: 'origin direct',
    kind: 'direct',
    start: async () => ({ target: plainTarget(originPort), procs: () => [], stop: async () => undefined }),
  };
}

/**
 * V8 flags every Node process of the comparison runs with: what the container image gives the
 * sidecars (Dockerfile NODE_OPTIONS and ENTRYPOINT; docs/PERFORMANCE.md "Memory" and "After
 * idle"), given to the forwarder as well so that the two are measured on equal terms.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--no-memory-reducer'];

export function forwarderSetup(originPort: number): Setup {
  return {
    name: 'Node forwarder',
    kind: 'forwarder',
    start: async () => {
      const hops: Started[] = [];
      try {
        const h2 = await startNodeScript('forwarder.ts', ['--upstream', `http://127.0.0.1:${originPort}`], NODE_FLAGS);
        hops.push(h2.proc);
        const h1 = await startNodeScript('forwarder.ts', ['--upstream', `http://127.0.0.1:${h2.info.port as number}`], NODE_FLAGS);
        hops.push(h1.proc);
        return {
          target: plainTarget(h1.info.port as number),
          procs: () => [
            { label: 'hop1', pid: h1.proc.pid },
            { label: 'hop2', pid: h2.proc.pid },
          ],
          stop: async () => {
            await Promise.all(hops.map((h) => h.stop()));
          },
        };
      } catch (e) {
        await Promise.all(hops.map((h) => h.stop()));
        throw e;
      }
    },
  };
}

export function nginxSetup(dir: string, certs: Certs, originPort: number): Setup {
  return {
    name: 'nginx mTLS',
    kind: 'nginx',
    start: async () => {
      const pair = await startNginxPair(dir, certs, originPort);
      return { target: plainTarget(pair.port), procs: () => pair.pids(), stop: () => pair.stop() };
    },
  };
}

export function stunnelSetup(dir: string, certs: Certs, originPort: number): Setup {
  return {
    name: 'stunnel pair',
    kind: 'stunnel',
    start: async () => {
      const pair = await startStunnelPair(dir, certs, originPort);
      return { target: plainTarget(pair.port), procs: () => pair.pids(), stop: () => pair.stop() };
    },
  };
}

/**
 * The parent only needs the sidecars' first log line; afterwards their per-request access
 * lines are drained without parsing, so the benchmark process stays out of the way.
 */
export function quiet(p: SidecarProcess): void {
  const out = p.child.stdout;
  if (out) {
    out.removeAllListeners('data');
    out.on('data', () => undefined);
  }
  (p.logs as unknown[]).length = 0;
}

/**
 * The sws chain, built through the real CLI by the e2e helpers (startChain: inner init, site,
 * users, keys, grants, server; both sidecars on OS-chosen loopback ports), outer `--rekey POLICY`.
 * `env` reaches both sidecars (with its NODE_OPTIONS); NODE_FLAGS are given to node itself.
 */
export function swsSetup(originUrl: string, policy: string, env: NodeJS.ProcessEnv = {}): Setup {
  return {
    name: `sws ${policy}`,
    kind: 'sws',
    policy,
    start: async () => {
      const chain = await startChain({ originUrl, host: HOST, rekey: policy, env, nodeArgs: NODE_FLAGS });
      let stopped = false;
      const stop = async () => {
        if (stopped) return;
        stopped = true;
        await chain.stop();
      };
      onCleanup(stop);
      quiet(chain.outer);
      quiet(chain.inner);
      return {
        target: {
          connectUrl: chain.proxy,
          smallPath: `http://${HOST}/1k`,
          proxyUser: `alice:${PASSWORDS.alice}`,
          url: (p) => `http://${HOST}${p}`,
        },
        procs: () => [
          { label: 'outer', pid: chain.outer.child.pid ?? -1 },
          { label: 'inner', pid: chain.inner.child.pid ?? -1 },
        ],
        exchanges: async () => metricValue(await chain.outer.metrics(), 'sws_key_exchanges_total', { result: 'ok' }),
        sessions: async () => metricValue(await chain.inner.metrics(), 'sws_sessions'),
        stop,
      };
    },
  };
}
