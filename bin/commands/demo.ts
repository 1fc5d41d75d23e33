/** `sws demo [--check]` (contract: shared/spec/cli.md, "Demo"). */
import type { Command } from 'commander';
import { checkDemo, demoInstructions, startDemo } from '../demo.ts';
import type { CliContext } from './common.ts';
import { runUntilSignal } from './run.ts';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('demo')
    .description('start a sample web server, an inner and an outer on localhost, with two users, and show how to try them')
    .option('--check', 'run a scripted round trip, print what it saw, and exit 0 only if every step worked')
    .action(async (opts: { check?: boolean }) => {
      const demo = await startDemo();
      if (!opts.check) {
        ctx.out(demoInstructions(demo));
        await runUntilSignal(demo);
        return;
      }
      try {
        ctx.out(`sws demo --check: web server ${demo.originUrl}, inner :${demo.inner.address.port}, outer (proxy) ${demo.proxyUrl}`);
        const steps = await checkDemo(demo);
        for (const s of steps) ctx.out(`${s.ok ? 'ok  ' : 'FAIL'}  ${s.name}  — ${s.saw}`);
        const failed = steps.filter((s) => !s.ok).length;
        ctx.out(failed === 0 ? `all ${steps.length} steps worked` : `${failed} of ${steps.length} steps failed`);
        if (failed > 0) ctx.exitCode = 1;
      } finally {
        await demo.stop();
      }
    });
}
