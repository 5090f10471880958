/**
 * The `nsnet` command line: builds the commander program from one register function per
 * command group, runs it, and turns every failure into `nsnet: CODE: message` on stderr with
 * the exit status of its class (lib/cli/exit.ts has the table). bin/nsnet calls run().
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { type Io, Context, example } from './context';
import { registerCni } from './cni';
import { registerDaemon } from './daemon';
import { registerDemo } from './demo/command';
import { registerDockerPlugin } from './docker-plugin';
import { registerEndpoint } from './endpoint';
import { EXIT, asNsnetError, errorDocument, errorLine, exitStatus, usage } from './exit';
import { registerMaintenance } from './maintenance';
import { registerNetns } from './netns';
import { registerNetwork } from './network';

/** The command table: one function per group; adding a command is adding a function here. */
const COMMANDS: ((program: Command, ctx: Context) => void)[] = [
  registerNetwork,
  registerEndpoint,
  registerNetns,
  registerMaintenance,
  registerDaemon,
  registerCni,
  registerDemo,
  registerDockerPlugin,
];

function version(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

const EXIT_HELP = `Exit status:
  0 ok · 1 unexpected · 2 usage · 3 not found · 4 conflict (exists, in use, overlap)
  5 invalid input · 6 refused by the system (errno, not root) · 7 not available
  8 a check failed · 130/143 interrupted; \`netns exec\`: the command's own status.
Errors print \`nsnet: CODE: message\` on stderr; with --json stdout gets {"error":{...}}.`;

export function buildProgram(io: Io): { program: Command; ctx: Context } {
  const program = new Command('nsnet');
  const ctx = new Context(io, program);
  program
    .description('container networking: networks, endpoints and their namespaces (bridge, overlay, macvlan, host, none, container)')
    .version(version(), '-V, --version')
    .addOption(new Option('--state-dir <dir>', 'where the state lives (default /var/lib/nsnet)').env('NSNET_STATE_DIR'))
    .addOption(new Option('--host-netns <ns>', "the host namespace (name, path or pid; default: this process's)").env('NSNET_HOST_NETNS'))
    .option('--json', 'print one JSON document on stdout (errors too)')
    .addOption(
      new Option('--control-plane <etcd-urls|dir>', 'overlay: etcd URLs (http://…, comma-separated) or a directory the hosts share').env('NSNET_CONTROL_PLANE'),
    )
    .addOption(new Option('--host-id <id>', "overlay: this host's id (default: the host name)").env('NSNET_HOST_ID'))
    .addOption(new Option('--underlay <dev|address>', "overlay: where VXLAN traffic leaves (default: the default route's device)").env('NSNET_UNDERLAY'))
    // Settings subcommands inherit: set before any command is added.
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: () => undefined, // printed by run() as `nsnet: ERR_USAGE: ...`
    });
  example(
    program,
    'nsnet network create --subnet 172.20.0.0/16 app',
    'nsnet connect app c1 --netns c1 -p 8080:80',
    'nsnet --json network inspect app',
    'sudo nsnet demo',
  );
  program.addHelpText('after', EXIT_HELP);
  for (const register of COMMANDS) register(program, ctx);
  return { program, ctx };
}

/** Whether --json was asked for, even when parsing failed part-way. */
function wantsJson(program: Command, argv: string[]): boolean {
  if (program.opts().json === true) return true;
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit status. */
export async function main(argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const { program, ctx } = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitStatus ?? EXIT.OK;
  } catch (e) {
    let err;
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return EXIT.OK; // --help, --version
      err =
        e.code === 'commander.help' || e.message === '(outputHelp)'
          ? usage('a command is needed (see the list above)')
          : usage(e.message.replace(/^error:\s*/u, ''), { commander: e.code });
    } else {
      err = asNsnetError(e);
    }
    io.stderr.write(errorLine(err));
    if (err.code === 'ERR_INTERNAL' && process.env.NSNET_DEBUG && e instanceof Error) io.stderr.write(`${e.stack}\n`);
    if (wantsJson(program, argv)) io.stdout.write(`${JSON.stringify({ ...ctx.errorExtra, ...errorDocument(err) }, null, 2)}\n`);
    return exitStatus(err.code, err.details);
  }
}

/** bin/nsnet: run, flush, exit (leaked handles of a failed command must not keep it alive). */
export function run(): void {
  void main(process.argv.slice(2)).then((status) => {
    process.exitCode = status;
    process.stdout.write('', () => process.stderr.write('', () => process.exit(status)));
  });
}
