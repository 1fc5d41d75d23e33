/**
 * `sws inject [FILE...]`: adds an inner or outer sidecar to the Kubernetes workloads that ask
 * for one (annotation `sws.dev/role: inner|outer`), like `linkerd inject`. Reads the files (or
 * stdin when none or `-`), writes the whole YAML stream to stdout, one line per workload on
 * stderr. Any error — invalid YAML, a conflict, a workload injected with other settings —
 * exits 2 with nothing on stdout.
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { injectYamlStream, joinStreams, type DocumentReport, type InjectFlags } from '../../k8s/index.ts';
import { SwsError, UsageError } from '../../store/index.ts';
import type { CliContext } from './common.ts';
import { addInjectOptions, injectSettingsFrom } from './k8s-flags.ts';

/** Manifests can be long (a `kubectl get -o yaml` List); more than this is surely a mistake. */
const MAX_MANIFEST_BYTES = 32 * 1024 * 1024;

async function readStdin(ctx: CliContext): Promise<string> {
  if ((ctx.stdin as NodeJS.ReadableStream & { isTTY?: boolean }).isTTY) ctx.note('reading manifests from stdin (end with Ctrl-D; or name files)');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of ctx.stdin) {
    const b = typeof c === 'string' ? Buffer.from(c, 'utf8') : Buffer.from(c);
    size += b.length;
    if (size > MAX_MANIFEST_BYTES) throw new UsageError(`stdin holds more than ${MAX_MANIFEST_BYTES / 1024 / 1024} MiB of YAML`, 'FILE');
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function readManifest(path: string, ctx: CliContext): string {
  const full = resolve(ctx.cwd, path);
  try {
    const st = statSync(full);
    if (!st.isFile()) throw new UsageError(`${path} is not a regular file`, 'FILE');
    if (st.size > MAX_MANIFEST_BYTES) throw new UsageError(`${path} is larger than ${MAX_MANIFEST_BYTES / 1024 / 1024} MiB`, 'FILE');
    return readFileSync(full, 'utf8');
  } catch (e) {
    if (e instanceof SwsError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : 'cannot read it'}`, 'FILE');
  }
}

function describe(r: DocumentReport): string | undefined {
  switch (r.result) {
    case 'injected':
      return `${r.display}: ${r.role} sidecar injected`;
    case 'unchanged':
      return `${r.display}: already injected (${r.role}), unchanged`;
    case 'skipped':
      return `${r.display}: skipped (${r.why})`;
    case 'passed-through':
      return undefined;
  }
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('inject')
    .description('add an sws sidecar to Kubernetes workloads annotated sws.dev/role: inner|outer (YAML in, YAML out)')
    .argument('[FILE...]', 'manifests (multi-document YAML); none or - reads stdin')
    .option('-q, --quiet', 'no per-workload lines on stderr');
  addInjectOptions(cmd).addHelpText(
    'after',
    `
Kinds: Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job,
CronJob, and v1 List items. Other documents are copied unchanged. The role annotation may sit
on the workload or on its pod template. Injecting twice changes nothing (marker annotation
sws.dev/injected); a workload injected with other settings is an error.

Example:
  sws inject deploy.yaml | kubectl apply -f -
  kubectl get deploy web -o yaml | sws inject --image registry.example/sws:0.1.0 | kubectl apply -f -`,
  );
  cmd.action(async (files: string[], opts: InjectFlags & { quiet?: boolean }) => {
    const settings = injectSettingsFrom(opts);
    const names = files.length === 0 ? ['-'] : files;
    if (names.filter((f) => f === '-').length > 1) throw new UsageError('stdin (-) can be read only once', 'FILE');
    const outputs: string[] = [];
    const notes: string[] = [];
    for (const name of names) {
      const text = name === '-' ? await readStdin(ctx) : readManifest(name, ctx);
      const r = injectYamlStream(text, settings, name === '-' ? '<stdin>' : name);
      outputs.push(r.text);
      for (const rep of r.reports) {
        const line = describe(rep);
        if (line) notes.push(`${names.length > 1 ? `${name === '-' ? '<stdin>' : name}: ` : ''}${line}`);
      }
      for (const w of r.warnings) notes.push(`warning: ${name === '-' ? '<stdin>' : name}: ${w}`);
    }
    // All sources are processed before anything is written: an error leaves stdout empty.
    ctx.stdout.write(joinStreams(outputs));
    if (!opts.quiet) for (const n of notes) ctx.note(n);
  });
}
