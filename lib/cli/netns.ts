/**
 * `nsnet netns add | rm | ls | exec`: namespace helpers for scripts.
 *
 * `exec` is a CLI convenience and the one place nsnet runs another program: it spawns
 * `nsenter --net=PATH -- CMD ARGS…` (util-linux), so the command runs with the namespace as its
 * network namespace and everything else (mounts, pid namespace, environment) unchanged. Decided
 * over re-executing node and setns()ing itself: node cannot exec, so a node shim would stay as
 * the command's parent anyway, and nsenter is what `ip netns exec` users expect minus its /sys
 * remount. The namespace is checked first (ERR_NETNS_NOT_FOUND, status 3); without nsenter the
 * status is 7 (ERR_NOT_AVAILABLE); otherwise nsnet exits with the command's own status
 * (128 + signal number when a signal ended it), like `ip netns exec`.
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { constants } from 'node:os';
import { NsnetError } from '../errors';
import type { Netns as NetnsClass } from '../netns';
import { type Context, example } from './context';
import { parseNetns } from './parse';

/** Signals nsnet passes on to the command while it runs. */
const FORWARD = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;

/** The Netns class, loaded on use (it loads the addon). */
const loadNetns = async (): Promise<typeof NetnsClass> => (await import('../netns')).Netns;

async function exec(ns: string, cmd: string[]): Promise<number> {
  if (!cmd.length) throw new NsnetError('ERR_USAGE', 'netns exec needs a command: nsnet netns exec NAME -- CMD [ARGS...]');
  const Netns = await loadNetns();
  const handle = Netns.open(parseNetns(ns)); // ERR_NETNS_NOT_FOUND / ERR_NOT_A_NETNS before spawning anything
  const nsPath = handle.path;
  handle.close();
  return new Promise<number>((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${nsPath}`, '--', ...cmd], { stdio: 'inherit' });
    const forward = new Map(
      FORWARD.map((sig) => [
        sig,
        () => {
          child.kill(sig);
        },
      ]),
    );
    for (const [sig, h] of forward) process.on(sig, h);
    const done = (): void => {
      for (const [sig, h] of forward) process.removeListener(sig, h);
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      done();
      reject(
        e.code === 'ENOENT' ? new NsnetError('ERR_NOT_AVAILABLE', 'netns exec needs nsenter (util-linux), which is not installed', { program: 'nsenter' }) : e,
      );
    });
    child.on('exit', (code, signal) => {
      done();
      resolve(signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1));
    });
  });
}

export function registerNetns(program: Command, ctx: Context): void {
  const netns = program.command('netns').description('named network namespaces (like `ip netns`), for scripts');
  example(netns, 'nsnet netns add c1', 'nsnet netns exec c1 -- ip addr');

  example(
    netns
      .command('add')
      .description('create named namespaces (under /var/run/netns, loopback up)')
      .argument('<name...>', 'namespace names')
      .action(async (names: string[]) => {
        const Netns = await loadNetns();
        for (const n of names) await Netns.create(n);
        ctx.print({ added: names }, () => '');
      }),
    'nsnet netns add c1 c2',
  );

  example(
    netns
      .command('rm')
      .alias('del')
      .description('remove named namespaces (they live on while a process uses them)')
      .argument('<name...>', 'namespace names')
      .action(async (names: string[]) => {
        const Netns = await loadNetns();
        for (const n of names) await Netns.remove(n);
        ctx.print({ removed: names }, () => '');
      }),
    'nsnet netns rm c1 c2',
  );

  example(
    netns
      .command('ls')
      .alias('list')
      .description('list named namespaces')
      .action(async () => {
        const names = await (await loadNetns()).list();
        ctx.print(names, () => names.join('\n'));
      }),
    'nsnet netns ls',
  );

  example(
    netns
      .command('exec')
      .description("run a command inside a namespace (via nsenter; exits with the command's status)")
      .argument('<netns>', 'a name, a path or a pid')
      .argument('<command...>', 'the command and its arguments (after --)')
      .action(async (ns: string, cmd: string[]) => {
        ctx.exitStatus = await exec(ns, cmd);
      }),
    'nsnet netns exec c1 -- ip -br addr',
    'nsnet netns exec c1 -- node server.js --port 80',
  );
}
