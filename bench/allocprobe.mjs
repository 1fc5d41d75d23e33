// Preloaded into the sidecars by bench/allocations.ts (NODE_OPTIONS=--import=…/allocprobe.mjs):
// V8's sampling heap profiler, counting objects the garbage collector has already freed too
// (allocation rate is what makes GC work, not what is still live). SIGUSR2 starts sampling;
// SIGPWR stops it and writes the profile to $SWS_ALLOCPROBE_DIR/PID.json.
// Plain JavaScript, so it loads the same with or without tsx.
import { Session } from 'node:inspector';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.SWS_ALLOCPROBE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.enable');
  const interval = Number(process.env.SWS_ALLOCPROBE_INTERVAL ?? 4096);
  process.on('SIGUSR2', () => {
    // $SWS_ALLOCPROBE_SURVIVORS=1: only objects that outlived a young collection (what gets promoted and makes full collections).
    const all = process.env.SWS_ALLOCPROBE_SURVIVORS !== '1';
    session.post('HeapProfiler.startSampling', { samplingInterval: interval, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: all });
  });
  process.on('SIGPWR', () => {
    session.post('HeapProfiler.stopSampling', (err, r) => {
      // Written aside and renamed: the reader polls for the file and must never see half of it.
      const file = join(dir, `${process.pid}.json`);
      writeFileSync(`${file}.part`, JSON.stringify(err ? { error: String(err) } : r.profile));
      renameSync(`${file}.part`, file);
    });
  });
}
