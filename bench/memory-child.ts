/**
 * The process the memory suite measures (bench/memory.ts): opens a NetworkHost in the host
 * namespace it is given, creates a network, connects containers, and prints its memory (VmRSS
 * from /proc/self/status, after a full GC) as one JSON line per step:
 *
 *   node --expose-gc dist/bench/memory-child.js HOST CONTAINER_PREFIX STATE_DIR 100,250,500,1000
 *
 * Steps: "loaded" (node with nsnet required, nothing opened), "idle" (NetworkHost open, the
 * network created, no endpoint), then after each count of connected endpoints.
 */
import * as fs from 'node:fs';
import { NetworkHost } from '../lib/index';

function memory(step: string, endpoints: number): void {
  (globalThis as { gc?: () => void }).gc?.();
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'mu').exec(status)?.[1] ?? NaN);
  const m = process.memoryUsage();
  const threads = Number(/^Threads:\s+(\d+)/mu.exec(status)?.[1] ?? NaN);
  const fds = fs.readdirSync('/proc/self/fd').length;
  process.stdout.write(
    JSON.stringify({
      step,
      endpoints,
      rss_bytes: kb('VmRSS') * 1024,
      hwm_bytes: kb('VmHWM') * 1024,
      heap_used_bytes: m.heapUsed,
      heap_total_bytes: m.heapTotal,
      external_bytes: m.external,
      array_buffers_bytes: m.arrayBuffers,
      threads,
      fds,
    }) + '\n',
  );
}

async function main(): Promise<void> {
  const [host, prefix, stateDir, counts] = process.argv.slice(2);
  if (!host || !prefix || !stateDir || !counts) throw new Error('usage: memory-child HOST CONTAINER_PREFIX STATE_DIR N1,N2,...');
  const steps = counts.split(',').map(Number);
  memory('loaded', 0);
  const h = await NetworkHost.open({ netns: host, stateDir });
  await h.createNetwork({ name: 'bench', subnet: '10.88.0.0/16' });
  memory('idle', 0);
  let n = 0;
  for (const target of steps) {
    while (n < target) {
      n++;
      await h.connect('bench', { id: `c${n}`, netns: `/var/run/netns/${prefix}${n}`, publish: [{ hostPort: 20000 + n, containerPort: 80, protocol: 'tcp' }] });
    }
    memory('connected', n);
  }
  await h.close();
}

main().catch((e: unknown) => {
  process.stderr.write(`memory-child: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
