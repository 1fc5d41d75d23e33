/**
 * The sidecar flags `sws inject` and `sws webhook start` share, so a manifest injected by hand
 * and a pod injected by the webhook get the same sidecar (and the same marker) for the same
 * flags. Parsed once into InjectSettings (k8s/settings.ts).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { defaultInjectSettings, parseInjectSettings, type InjectFlags, type InjectSettings } from '../../k8s/index.ts';

export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export function addInjectOptions(cmd: Command): Command {
  const d = defaultInjectSettings(packageVersion());
  return cmd
    .option('--image <REF>', `sidecar image (default ${d.image})`)
    .option('--image-pull-policy <POLICY>', `Always, IfNotPresent or Never (default ${d.imagePullPolicy})`)
    .option('--inner-port <PORT>', `port of the inner sidecar (default ${d.innerPort})`)
    .option('--outer-port <PORT>', `port of the outer sidecar, the clients' proxy (default ${d.outerPort})`)
    .option('--admin-port <PORT>', `port of /healthz, /readyz and /metrics (default ${d.adminPort})`)
    .option('--cpu-request <QTY>', `CPU request ("" for none; default ${d.resources.cpuRequest})`)
    .option('--memory-request <QTY>', `memory request ("" for none; default ${d.resources.memoryRequest})`)
    .option('--cpu-limit <QTY>', 'CPU limit (default none)')
    .option('--memory-limit <QTY>', `memory limit ("" for none; default ${d.resources.memoryLimit})`)
    .option('--data-volume <KIND>', 'data dir volume: emptyDir, emptyDir:SIZE or pvc:CLAIM (default emptyDir; use a PVC to keep keys and users across restarts)')
    .option('--master-key-secret <NAME>', `Secret with the master key; {role} is inner or outer (default ${d.masterKeySecret})`)
    .option('--master-key-secret-key <KEY>', `key of the master key in that Secret (default ${d.masterKeySecretKey})`)
    .option('--master-key-as <HOW>', 'env ($SWS_MASTER_KEY from a secretKeyRef) or file (the Secret mounted as DATA/master.key) (default env)')
    .option('--config-map <NAME>', `ConfigMap with the declarative config for \`sws apply\`; {role} as above (default ${d.configMap})`)
    .option('--config-map-key <KEY>', `key of the config in that ConfigMap (default ${d.configMapKey})`)
    .option('--run-as-user <UID>', `non-root user and group ID of the sidecar (default ${d.runAsUser})`)
    .option('--log-level <LEVEL>', `sidecar log level (default ${d.logLevel})`)
    .option('--rekey <TRIGGERS>', "outer only: key-exchange triggers, as `sws outer start --rekey` (default: the outer's)")
    .option('--native-sidecar <MODE>', 'auto (for pods that are not restarted: Jobs, CronJobs), always or never: run the sidecar as an init container with restartPolicy Always (Kubernetes ≥ 1.29) (default auto)');
}

export function injectSettingsFrom(opts: InjectFlags): InjectSettings {
  return parseInjectSettings(opts, defaultInjectSettings(packageVersion()));
}
