// Preloaded with `node --import` (through NODE_OPTIONS) by test/e2e/startup-modules.test.ts:
// when the process exits, writes the CommonJS modules it loaded (require.cache keys: zod and
// the other dependencies sws loads through `require`) to $SWS_TEST_LOADED_MODULES_DIR/PID.json.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.SWS_TEST_LOADED_MODULES_DIR;
if (dir) {
  const require = createRequire(import.meta.url);
  process.on('exit', () => {
    writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify({ argv: process.argv.slice(2), modules: Object.keys(require.cache) }));
  });
}
