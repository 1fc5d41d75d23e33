/**
 * What an injected sidecar looks like, as one typed object parsed once at the edge (the
 * `sws inject` and `sws webhook start` flags share `parseInjectSettings`). Names that differ by
 * role (the Secret, the ConfigMap) may hold `{role}`, filled in per workload.
 */
import { parseRekeyPolicy, formatRekeyPolicy } from '../core/keyrotation.ts';
import { PolicyError } from '../core/errors.ts';
import { UsageError } from '../store/errors.ts';
import type { SidecarRole } from './annotations.ts';

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';
export const PULL_POLICIES: readonly PullPolicy[] = ['Always', 'IfNotPresent', 'Never'];

/** `auto`: a native sidecar (init container with restartPolicy Always, Kubernetes ≥ 1.29) for
 * pods that are not restarted (Jobs, CronJobs, restartPolicy Never/OnFailure), so the sidecar
 * does not keep a finished Job running; a plain container otherwise. */
export type NativeSidecarMode = 'auto' | 'always' | 'never';
export const NATIVE_SIDECAR_MODES: readonly NativeSidecarMode[] = ['auto', 'always', 'never'];

export type DataVolume = { readonly kind: 'emptyDir'; readonly sizeLimit?: string } | { readonly kind: 'pvc'; readonly claimName: string };

export interface InjectSettings {
  readonly image: string;
  readonly imagePullPolicy: PullPolicy;
  /** Where the inner sidecar listens for envelopes. */
  readonly innerPort: number;
  /** Where the outer sidecar listens as the clients' HTTP proxy / portal. */
  readonly outerPort: number;
  /** /healthz, /readyz, /metrics of either sidecar. */
  readonly adminPort: number;
  /** Kubernetes quantities; an empty string leaves that field out. */
  readonly resources: { readonly cpuRequest: string; readonly memoryRequest: string; readonly cpuLimit: string; readonly memoryLimit: string };
  readonly dataVolume: DataVolume;
  /** The Secret holding the master key (base64 of 32 octets) and its key inside the Secret. */
  readonly masterKeySecret: string;
  readonly masterKeySecretKey: string;
  /** `env`: $SWS_MASTER_KEY from a secretKeyRef; `file`: the Secret mounted as DATA/master.key. */
  readonly masterKeyAs: 'env' | 'file';
  /** The ConfigMap holding the declarative config (`sws apply`) and its key. */
  readonly configMap: string;
  readonly configMapKey: string;
  readonly runAsUser: number;
  readonly logLevel: string;
  /** Outer only: the key-exchange triggers, canonical form. */
  readonly rekey?: string;
  readonly nativeSidecar: NativeSidecarMode;
}

/** Paths inside the sidecar container. */
export const PATHS = {
  data: '/var/lib/sws',
  config: '/etc/sws',
  tmp: '/tmp',
} as const;

/** Names the injection adds to a pod; a pod that already uses one conflicts. */
export const NAMES = {
  container: (role: SidecarRole) => `sws-${role}`,
  init: 'sws-init',
  volumes: { data: 'sws-data', tmp: 'sws-tmp', config: 'sws-config', masterKey: 'sws-master-key' },
  ports: { main: 'sws', admin: 'sws-admin' },
} as const;

export function defaultInjectSettings(version: string): InjectSettings {
  return {
    image: `sws:${version}`,
    imagePullPolicy: 'IfNotPresent',
    innerPort: 8480,
    outerPort: 3128,
    adminPort: 9901,
    resources: { cpuRequest: '50m', memoryRequest: '96Mi', cpuLimit: '', memoryLimit: '256Mi' },
    dataVolume: { kind: 'emptyDir' },
    masterKeySecret: 'sws-{role}-master-key',
    masterKeySecretKey: 'master-key',
    masterKeyAs: 'env',
    configMap: 'sws-{role}-config',
    configMapKey: 'sws.yaml',
    runAsUser: 10001,
    logLevel: 'info',
    nativeSidecar: 'auto',
  };
}

/** Raw flag values as commander hands them over (strings, all optional). */
export interface InjectFlags {
  image?: string;
  imagePullPolicy?: string;
  innerPort?: string;
  outerPort?: string;
  adminPort?: string;
  cpuRequest?: string;
  memoryRequest?: string;
  cpuLimit?: string;
  memoryLimit?: string;
  dataVolume?: string;
  masterKeySecret?: string;
  masterKeySecretKey?: string;
  masterKeyAs?: string;
  configMap?: string;
  configMapKey?: string;
  runAsUser?: string;
  logLevel?: string;
  rekey?: string;
  nativeSidecar?: string;
}

const QUANTITY = /^(?:\d+(?:\.\d+)?|\.\d+)(?:m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|e\d+)?$/;
/** RFC 1123 DNS subdomain (Secret, ConfigMap and PVC names), allowing the `{role}` placeholder. */
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$/;
/** ConfigMap / Secret data keys. */
const DATA_KEY = /^[-._a-zA-Z0-9]{1,253}$/;
/** An image reference: no spaces or controls (registries check the rest). */
const IMAGE = /^[a-zA-Z0-9][a-zA-Z0-9._\-/:@]{0,511}$/;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function port(v: string | undefined, flag: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535) throw new UsageError('must be a port number from 1 to 65535', flag);
  return Number(v);
}

function quantity(v: string | undefined, flag: string, dflt: string): string {
  if (v === undefined) return dflt;
  if (v !== '' && !QUANTITY.test(v)) throw new UsageError('must be a Kubernetes quantity such as 100m, 0.5, 128Mi or 1Gi (or "" to leave it out)', flag);
  return v;
}

function dnsName(v: string | undefined, flag: string, dflt: string): string {
  if (v === undefined) return dflt;
  if (!DNS_SUBDOMAIN.test(v.replaceAll('{role}', 'inner'))) throw new UsageError('must be a Kubernetes object name: lower-case letters, digits, "-" and "." ({role} stands for inner or outer)', flag);
  return v;
}

function oneOf<T extends string>(v: string | undefined, flag: string, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`must be one of ${allowed.join(', ')}`, flag);
  return v as T;
}

/** Validates the flags against the defaults; every error names its flag. */
export function parseInjectSettings(flags: InjectFlags, defaults: InjectSettings): InjectSettings {
  const image = flags.image ?? defaults.image;
  if (!IMAGE.test(image)) throw new UsageError('must be a container image reference such as registry.example/sws:0.1.0', '--image');

  let dataVolume: DataVolume = defaults.dataVolume;
  if (flags.dataVolume !== undefined) {
    const v = flags.dataVolume;
    const m = /^pvc:(.+)$/.exec(v);
    const e = /^emptyDir(?::(.+))?$/.exec(v);
    if (m) dataVolume = { kind: 'pvc', claimName: dnsName(m[1], '--data-volume', '') };
    else if (e) dataVolume = e[1] !== undefined ? { kind: 'emptyDir', sizeLimit: quantity(e[1], '--data-volume', '') } : { kind: 'emptyDir' };
    else throw new UsageError('must be emptyDir, emptyDir:SIZE (e.g. emptyDir:1Gi) or pvc:CLAIM-NAME', '--data-volume');
  }

  let rekey = defaults.rekey;
  if (flags.rekey !== undefined) {
    try {
      rekey = formatRekeyPolicy(parseRekeyPolicy(flags.rekey));
    } catch (e) {
      if (e instanceof PolicyError) throw new UsageError(e.message, '--rekey');
      throw e;
    }
  }

  const masterKeySecretKey = flags.masterKeySecretKey ?? defaults.masterKeySecretKey;
  if (!DATA_KEY.test(masterKeySecretKey)) throw new UsageError('must be a Secret data key (letters, digits, "-", "_", ".")', '--master-key-secret-key');
  const configMapKey = flags.configMapKey ?? defaults.configMapKey;
  if (!DATA_KEY.test(configMapKey)) throw new UsageError('must be a ConfigMap data key (letters, digits, "-", "_", ".")', '--config-map-key');

  const runAsUser = flags.runAsUser === undefined ? defaults.runAsUser : Number(flags.runAsUser);
  if (flags.runAsUser !== undefined && (!/^\d{1,10}$/.test(flags.runAsUser) || runAsUser < 1 || runAsUser > 2 ** 31 - 1)) {
    throw new UsageError('must be a non-zero user ID (the sidecar never runs as root)', '--run-as-user');
  }

  const s: InjectSettings = {
    image,
    imagePullPolicy: oneOf(flags.imagePullPolicy, '--image-pull-policy', PULL_POLICIES, defaults.imagePullPolicy),
    innerPort: port(flags.innerPort, '--inner-port', defaults.innerPort),
    outerPort: port(flags.outerPort, '--outer-port', defaults.outerPort),
    adminPort: port(flags.adminPort, '--admin-port', defaults.adminPort),
    resources: {
      cpuRequest: quantity(flags.cpuRequest, '--cpu-request', defaults.resources.cpuRequest),
      memoryRequest: quantity(flags.memoryRequest, '--memory-request', defaults.resources.memoryRequest),
      cpuLimit: quantity(flags.cpuLimit, '--cpu-limit', defaults.resources.cpuLimit),
      memoryLimit: quantity(flags.memoryLimit, '--memory-limit', defaults.resources.memoryLimit),
    },
    dataVolume,
    masterKeySecret: dnsName(flags.masterKeySecret, '--master-key-secret', defaults.masterKeySecret),
    masterKeySecretKey,
    masterKeyAs: oneOf(flags.masterKeyAs, '--master-key-as', ['env', 'file'] as const, defaults.masterKeyAs),
    configMap: dnsName(flags.configMap, '--config-map', defaults.configMap),
    configMapKey,
    runAsUser,
    logLevel: oneOf(flags.logLevel, '--log-level', LOG_LEVELS, defaults.logLevel),
    nativeSidecar: oneOf(flags.nativeSidecar, '--native-sidecar', NATIVE_SIDECAR_MODES, defaults.nativeSidecar),
    ...(rekey !== undefined ? { rekey } : {}),
  };
  if (s.adminPort === s.innerPort || s.adminPort === s.outerPort) throw new UsageError('must differ from the sidecar port', '--admin-port');
  return s;
}

/** `sws-{role}-config` → `sws-inner-config`. */
export const forRole = (name: string, role: SidecarRole): string => name.replaceAll('{role}', role);
