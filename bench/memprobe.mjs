// Preloaded into a process bench/memory.ts measures (NODE_OPTIONS=--import=…/memprobe.mjs):
// on SIGUSR2 it writes process.memoryUsage() and V8's heap spaces to $SWS_MEMPROBE_DIR/PID.json.
// Plain JavaScript, so it loads the same with or without tsx.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getHeapSpaceStatistics } from 'node:v8';

const dir = process.env.SWS_MEMPROBE_DIR;
if (dir) {
  process.on('SIGUSR2', () => {
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]));
    writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify({ usage: process.memoryUsage(), spaces }));
  });
}
