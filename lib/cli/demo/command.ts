/**
 * `nsnet demo` (and `npm start`): runs lib/cli/demo/demo.ts safely on any machine, as root.
 *
 * The demo re-executes itself under `unshare --mount --propagation private` and, in that private
 * mount namespace, mounts a tmpfs over /run before creating anything: the named namespaces it
 * makes (/run/netns/nsdemo-…) are then invisible to the machine, and even a `kill -9` leaves
 * nothing behind — when the demo's last process exits its mount namespace goes, and with it every
 * namespace it made. The network namespace the demo was started in is never changed: all its
 * work happens in namespaces it made (NetworkHost gets the demo's "host" namespace). On success,
 * failure, SIGINT, SIGTERM and SIGHUP it still removes its namespaces, processes and state
 * directory itself.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { Command } from 'commander';
import * as fs from 'node:fs';
import { constants } from 'node:os';
import { NsnetError } from '../../errors';
import { type Context, example } from '../context';
import { errorDocument, errorLine, exitStatus } from '../exit';
import type { DemoStep } from './demo';

/** Set in the re-executed demo: the mount namespace (inode) of the process that started it. */
const OUTER_MNT = 'NSNET_DEMO_OUTER_MNT';
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

const ABOUT = `nsnet demo shows every network mode with real traffic: host, bridge (a published port, NAT,
conntrack), none, container, macvlan (and overlay once it lands). It creates a private world of
network namespaces — a "host", an external peer, a LAN peer and the containers — runs the nsnet
CLI against it, checks each result with real TCP traffic, prints a table of what worked and
removes everything. The machine's own network is never touched.
`;

const mntInode = (): string => String(fs.statSync('/proc/self/ns/mnt').ino);

/** The outer step: start the demo in a private mount namespace and wait for it. */
async function outer(): Promise<number> {
  const env = { ...process.env, [OUTER_MNT]: mntInode() };
  const args = ['--mount', '--propagation', 'private', '--', process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  const child = spawn('unshare', args, { stdio: 'inherit', env });
  // A terminal's Ctrl-C reaches both processes; kill(1) or a supervisor's SIGTERM only this one.
  const forward = new Map(
    SIGNALS.map((s) => [
      s,
      () => {
        child.kill(s);
      },
    ]),
  );
  for (const [s, h] of forward) process.on(s, h);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          e.code === 'ENOENT'
            ? new NsnetError('ERR_NOT_AVAILABLE', 'the demo needs unshare (util-linux) to keep its namespaces private', { program: 'unshare' })
            : e,
        ),
      );
      child.once('exit', (code, signal) => resolve(signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1)));
    });
  } finally {
    for (const [s, h] of forward) process.removeListener(s, h);
  }
}

/** Mounts a tmpfs over /run (and a separate /var/run) — only ever in the demo's own mount namespace. */
function privateRun(): void {
  const outerMnt = process.env[OUTER_MNT];
  if (!outerMnt || outerMnt === mntInode()) throw new NsnetError('ERR_INTERNAL', 'the demo is not in a private mount namespace; refusing to mount anything');
  const dirs = ['/run'];
  try {
    const varRun = fs.realpathSync('/var/run');
    if (varRun !== '/run') dirs.push('/var/run');
  } catch {
    /* no /var/run */
  }
  for (const d of dirs) {
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755,nosuid,nodev', 'nsnet-demo', d], { encoding: 'utf8' });
    if (r.status !== 0) throw new NsnetError('ERR_INTERNAL', `mount a private ${d}: ${(r.stderr || r.error?.message || '').trim()}`);
  }
}

/** The inner step: the demo itself, with cleanup on every way out. */
async function inner(ctx: Context): Promise<void> {
  privateRun();
  if (spawnSync('nsenter', ['--version']).error)
    throw new NsnetError('ERR_NOT_AVAILABLE', 'the demo needs nsenter (util-linux) to run its servers and clients inside namespaces', { program: 'nsenter' });
  const log = (line: string): void => ctx.say(line);
  // Loaded here: the demo drives the whole library, which `nsnet --help` should not load.
  const { Demo, reportTable } = await import('./demo');
  const { World } = await import('./world');
  const world = new World();
  const onSignal = (sig: (typeof SIGNALS)[number]) => (): void => {
    if (world.closing) return;
    log(`\n${sig}: stopping and removing what the demo made...`);
    void world.cleanup().then((problems) => {
      for (const p of problems) log(`  could not clean up: ${p}`);
      if (!problems.length) log(`removed the demo's namespaces, processes and ${world.stateDir}`);
      const err = new NsnetError('ERR_INTERRUPTED', `interrupted by ${sig}; the demo cleaned up after itself`, { signal: sig });
      ctx.io.stderr.write(errorLine(err));
      if (ctx.json) ctx.io.stdout.write(`${JSON.stringify(errorDocument(err), null, 2)}\n`);
      process.stdout.write('', () => process.exit(exitStatus(err.code, err.details)));
    });
  };
  const handlers = new Map(SIGNALS.map((s) => [s, onSignal(s)]));
  for (const [s, h] of handlers) process.on(s, h);
  log(ABOUT);
  log(`state: ${world.stateDir}`);
  const demo = new Demo(world, log);
  const interrupted = (): Promise<never> => new Promise<never>(() => undefined); // the signal handler exits
  let steps: DemoStep[];
  try {
    steps = (await demo.run()).steps;
  } catch (e) {
    if (world.closing) return interrupted();
    steps = [...demo.steps, { mode: 'setup', check: "build the demo's world", result: 'FAILED', detail: (e as Error).message }];
  }
  if (world.closing) return interrupted();
  const problems = await world.cleanup();
  for (const [s, h] of handlers) process.removeListener(s, h);
  for (const p of problems) log(`could not clean up: ${p}`);
  if (problems.length) steps.push({ mode: 'cleanup', check: 'remove everything the demo made', result: 'FAILED', detail: problems.join('; ') });
  else log(`\nRemoved the demo's namespaces, processes and ${world.stateDir}.`);
  const ok = steps.every((s) => s.result !== 'FAILED');
  log(`\n${reportTable(steps)}`);
  if (!ok) {
    // With --json the report rides in the error document: stdout holds one document either way.
    ctx.errorExtra = { ok, steps };
    throw new NsnetError('ERR_CHECK_FAILED', `${steps.filter((s) => s.result === 'FAILED').length} demo step(s) failed (see the table)`);
  }
  ctx.print({ ok, steps }, () => '');
  log(steps.some((s) => s.result === 'SKIPPED') ? 'Every mode available in this build worked.' : 'Every mode worked.');
}

export function registerDemo(program: Command, ctx: Context): void {
  example(
    program
      .command('demo')
      .description('show every network mode with real traffic, in private namespaces (root; changes nothing on the machine)')
      .action(async () => {
        if (process.getuid?.() !== 0) {
          ctx.io.stderr.write(ABOUT);
          throw new NsnetError('ERR_NOT_ROOT', 'the demo creates network namespaces: run it as root (sudo nsnet demo, or sudo npm start)');
        }
        if (process.env[OUTER_MNT] === undefined) ctx.exitStatus = await outer();
        else await inner(ctx);
      }),
    'sudo nsnet demo',
    'sudo npm start',
  );
}
