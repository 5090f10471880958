/**
 * `nsnet docker-plugin`: serves Docker's remote network and IPAM driver protocol
 * (lib/docker/) in the foreground until SIGINT/SIGTERM, with the global --state-dir and
 * --host-netns. One line per request on stderr with --verbose.
 */
import type { Command } from 'commander';
import { DEFAULT_SOCKET } from '../docker/paths';
import { type Context, example } from './context';
import { parseNetns } from './parse';

async function runDockerPlugin(ctx: Context, opts: { socket: string; verbose?: boolean }): Promise<void> {
  const g = ctx.globals;
  const { startDockerPlugin } = await import('../docker/plugin');
  const plugin = await startDockerPlugin({
    socket: opts.socket,
    onWarning: (w) => ctx.warn(w),
    ...(g.stateDir !== undefined ? { stateDir: g.stateDir } : {}),
    ...(g.hostNetns !== undefined ? { netns: parseNetns(g.hostNetns) } : {}),
    ...(opts.verbose
      ? {
          onRequest: (method, reply, ms) =>
            ctx.io.stderr.write(`nsnet docker-plugin: ${method} ${reply.status}${reply.body.Err ? ` ${String(reply.body.Err)}` : ''} (${ms} ms)\n`),
        }
      : {}),
  });
  ctx.io.stderr.write(`nsnet docker-plugin: listening on ${plugin.socket} (SIGINT or SIGTERM to stop)\n`);
  try {
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
  } finally {
    await plugin.close();
  }
}

export function registerDockerPlugin(program: Command, ctx: Context): void {
  example(
    program
      .command('docker-plugin')
      .description(
        "serve Docker's remote network and IPAM driver protocol (`docker network create -d nsnet [--ipam-driver nsnet]`) until SIGINT/SIGTERM; root only",
      )
      .option('--socket <path>', 'where to listen (dockerd finds plugins in /run/docker/plugins)', DEFAULT_SOCKET)
      .option('--verbose', 'one line per request on stderr')
      .action((opts: { socket: string; verbose?: boolean }) => runDockerPlugin(ctx, opts)),
    'sudo nsnet docker-plugin',
    'docker network create -d nsnet --ipam-driver nsnet app',
  );
}
