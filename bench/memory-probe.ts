// Preloaded into a process under a memory soak (node --import): every MEMORY_PROBE_SECONDS (30)
// writes one line to stderr, `MEMORY <uptime s> rss=<B> heap_used=<B> heap_total=<B> external=<B>
// array_buffers=<B> rss_anon=<B> rss_file=<B>` (no forced GC: what the process holds; the last two
// from /proc/self/status on Linux: anonymous memory, i.e. heaps, against mapped files such as code), and on SIGUSR1 writes a heap
// snapshot to MEMORY_PROBE_DIR (or the temporary directory), answering `HEAP_SNAPSHOT <path>`.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';

const every = Number(process.env.MEMORY_PROBE_SECONDS ?? 30) * 1000;
const dir = process.env.MEMORY_PROBE_DIR ?? os.tmpdir();
let seq = 0;

/** RssAnon and RssFile of /proc/self/status in bytes (0 where there is no /proc). */
function rssParts(): { anon: number; file: number } {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { anon: kb('RssAnon'), file: kb('RssFile') };
  } catch {
    return { anon: 0, file: 0 };
  }
}

function line(): void {
  const m = process.memoryUsage();
  const { anon, file } = rssParts();
  process.stderr.write(
    `MEMORY ${process.uptime().toFixed(0)} rss=${m.rss} heap_used=${m.heapUsed} heap_total=${m.heapTotal} external=${m.external} ` +
      `array_buffers=${m.arrayBuffers} rss_anon=${anon} rss_file=${file}\n`,
  );
}

setInterval(line, every).unref();
process.on('SIGUSR1', () => {
  const file = v8.writeHeapSnapshot(path.join(dir, `${process.pid}-${++seq}.heapsnapshot`));
  process.stderr.write(`HEAP_SNAPSHOT ${file}\n`);
  line();
});
