// Preloaded into the benchmark's operator process (node --expose-gc --import):
// on SIGUSR2, a full garbage collection, then process.memoryUsage() into BENCH_MEMORY_FILE,
// and, with BENCH_HEAP_SNAPSHOT_DIR set, a heap snapshot into that folder (for profiling).
// Plain JavaScript, so that the process measured does not load the type stripper for it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';

const file = process.env.BENCH_MEMORY_FILE;
const snapshots = process.env.BENCH_HEAP_SNAPSHOT_DIR;
if (file) {
  process.on('SIGUSR2', () => {
    globalThis.gc?.();
    globalThis.gc?.();
    const usage = process.memoryUsage();
    if (snapshots) writeHeapSnapshot(join(snapshots, `operator-${process.pid}-${Date.now()}.heapsnapshot`));
    writeFileSync(file, JSON.stringify({ ...usage, at: Date.now() }));
  });
}
