/**
 * Child-process helper for store tests.
 *   grant DIR PREFIX N     grants N rules, one transaction each (concurrent-writer test)
 *   watch DIR              starts a watch and an engine and returns: the process must exit by itself
 */
import { aclEngine, aclRules, openStore } from '../index.ts';

const [mode, dir, prefix, n] = process.argv.slice(2);
if (mode === 'grant') {
  const store = openStore(dir!, { expectRole: 'inner', busyTimeoutMs: 20_000 });
  const rules = aclRules(store);
  for (let i = 0; i < Number(n); i++) rules.grant({ user: 'alice', pattern: `/${prefix}/${i}/**` });
  store.close();
} else if (mode === 'watch') {
  const store = openStore(dir!, { expectRole: 'inner' });
  store.watch(() => {});
  aclEngine(store);
  process.stdout.write('watching\n');
} else {
  process.exitCode = 64;
}
