// Preloaded into the benchmark's operator process (node --expose-gc --import):
// on SIGUSR2, a full garbage collection, then process.memoryUsage() into BENCH_MEMORY_FILE.
// Plain JavaScript, so that the process measured does not load the type stripper for it.
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_MEMORY_FILE;
if (file) {
  process.on('SIGUSR2', () => {
    globalThis.gc?.();
    globalThis.gc?.();
    writeFileSync(file, JSON.stringify({ ...process.memoryUsage(), at: Date.now() }));
  });
}
