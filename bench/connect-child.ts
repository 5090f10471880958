/**
 * The processes the connect suite (bench/connect.ts) runs besides itself:
 *
 *   node dist/bench/connect-child.js cycles HOST PREFIX STATE_DIR K
 *     opens a NetworkHost in HOST, creates the network, and runs K connect + disconnect cycles
 *     (containers PREFIX1..PREFIXK, one published port each). Run under `strace -f -c` twice, with
 *     two values of K: the difference is what K more cycles cost in system calls.
 *
 *   node dist/bench/connect-child.js burst HOST PREFIX STATE_DIR FROM N
 *     opens a NetworkHost on the network the suite made, connects and disconnects container FROM
 *     5 times (untimed: the network made sure of, the code warm), prints "ready", waits for a line on stdin, then
 *     connects containers FROM+1..FROM+N all at once and prints {"start","end"} (ms since the
 *     epoch, sub-millisecond): one of the 4 processes × 8 connects in flight.
 */
import * as readline from 'node:readline';
import { NetworkHost } from '../lib/index';

const NETWORK = 'bench';
const WARMUP = 5;
const clock = (): number => performance.timeOrigin + performance.now();
const publish = (s: number): { hostPort: number; containerPort: number; protocol: 'tcp' }[] => [
  { hostPort: 20000 + 10 * (s - 1), containerPort: 80, protocol: 'tcp' },
];

async function cycles(host: string, prefix: string, stateDir: string, k: number): Promise<void> {
  const h = await NetworkHost.open({ netns: host, stateDir });
  await h.createNetwork({ name: NETWORK, subnet: '10.88.0.0/16', bridge: 'nsbr-bench' });
  for (let s = 1; s <= k; s++) {
    await h.connect(NETWORK, { id: `c${s}`, netns: `/var/run/netns/${prefix}${s}`, publish: publish(s) });
    await h.disconnect(NETWORK, `c${s}`);
  }
  await h.close();
}

async function burst(host: string, prefix: string, stateDir: string, from: number, n: number): Promise<void> {
  const h = await NetworkHost.open({ netns: host, stateDir });
  // Warm: the network made sure of, the code compiled (as in a process that has served a while).
  for (let i = 0; i < WARMUP; i++) {
    await h.connect(NETWORK, { id: `w${from}`, netns: `/var/run/netns/${prefix}${from}`, publish: publish(from) });
    await h.disconnect(NETWORK, `w${from}`);
  }
  await h.reap();
  process.stdout.write('ready\n');
  const rl = readline.createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => rl.once('line', () => resolve()));
  rl.close();
  const start = clock();
  await Promise.all(
    Array.from({ length: n }, (_, i) => from + 1 + i).map((s) =>
      h.connect(NETWORK, { id: `c${s}`, netns: `/var/run/netns/${prefix}${s}`, publish: publish(s) }),
    ),
  );
  const end = clock();
  process.stdout.write(`${JSON.stringify({ start, end })}\n`);
  await h.close();
}

async function main(): Promise<void> {
  const [mode, host, prefix, stateDir, a, b] = process.argv.slice(2);
  if (!host || !prefix || !stateDir || !a) throw new Error('usage: connect-child cycles|burst HOST PREFIX STATE_DIR ...');
  if (mode === 'cycles') await cycles(host, prefix, stateDir, Number(a));
  else if (mode === 'burst') await burst(host, prefix, stateDir, Number(a), Number(b));
  else throw new Error(`unknown mode ${mode}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`connect-child: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
