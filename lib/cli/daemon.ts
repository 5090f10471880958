/**
 * `nsnet daemon`: the nsnet daemon in the foreground, for supervisors (systemd units ship in
 * the package's systemd/ directory; socket activation is recognized by LISTEN_FDS). The same
 * server the nsnet-cni client starts by itself when none answers (lib/cni/daemon.ts); run by
 * hand or by a supervisor it does not exit when idle unless --idle-exit says so.
 */
import { Option, type Command } from 'commander';
import { NsnetError } from '../errors';
import { type Context, example } from './context';

function seconds(value: string | undefined, what: string, zeroOk: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (!zeroOk && n === 0)) {
    throw new NsnetError('ERR_INVALID_ARGUMENT', `${what} must be a ${zeroOk ? 'non-negative' : 'positive'} number of seconds, not ${JSON.stringify(value)}`, {
      option: what,
      value,
    });
  }
  return n * 1000;
}

interface DaemonCliOptions {
  socket?: string;
  idleExit?: string;
  idleTimeout?: string;
}

async function runDaemon(ctx: Context, o: DaemonCliOptions): Promise<void> {
  const idleExitMs = seconds(o.idleExit, '--idle-exit', true);
  const idleTimeoutMs = seconds(o.idleTimeout, '--idle-timeout', false);
  // Loaded here: the server loads the whole plugin, which no other command needs.
  const { serveDaemon } = await import('../cni/daemon');
  await serveDaemon({
    ...(o.socket !== undefined ? { socket: o.socket } : {}),
    ...(idleExitMs ? { idleExitMs } : {}),
    ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}),
    log: (m) => void ctx.io.stderr.write(`nsnet daemon: ${m}\n`),
    onReady: (d) => ctx.print({ socket: d.socket, lock: d.lockPath, pid: process.pid }, () => `listening ${d.socket}`),
  });
}

export function registerDaemon(program: Command, ctx: Context): void {
  example(
    program
      .command('daemon')
      .description(
        'run the nsnet daemon (what nsnet-cni hands its requests to, and the DNS resolver of the networks it and `nsnet connect` use) in the foreground until SIGTERM/SIGINT; nsnet-cni and `nsnet connect` start one themselves when none runs',
      )
      .addOption(
        new Option('--socket <path>', 'the unix socket (default /run/nsnet/cni.sock; the lock is its name with .lock for .sock)').env('NSNET_CNI_SOCKET'),
      )
      .option('--idle-exit <seconds>', 'exit after this long without a request, unless containers use its DNS (default: never; 0: never)')
      .option('--idle-timeout <seconds>', "close a foreign host namespace's NetworkHost after this long unused (default 60)")
      .action((o: DaemonCliOptions) => runDaemon(ctx, o)),
    'sudo nsnet daemon',
    'sudo nsnet daemon --socket /run/nsnet/cni.sock --idle-exit 300',
  );
}
