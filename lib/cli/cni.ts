/**
 * `nsnet cni install --bin-dir DIR`: puts the nsnet-cni plugin into a CNI plugin directory.
 *
 * CNI plugins are installed by copying executables into a directory (/opt/cni/bin), but a copy
 * of the package's bin/nsnet-cni cannot know where its package is (it finds it only through a
 * symlink). So the install writes a copy of that launcher with the package's absolute path
 * (and the node that ran the install) filled in: a small sh script that execs the package's
 * native client, which talks to the daemon (starting it when none runs). Decision: a script
 * rather than a copy of the native client with the path patched into it — a reader can see
 * what it runs, and it keeps working when the package is rebuilt in place; the cost is one sh
 * start (~1 ms). Reinstall after moving the package.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { NsnetError } from '../errors';
import { type Context, example } from './context';

/** The package this CLI runs from (dist/lib/cli → the package). */
const PACKAGE = path.resolve(__dirname, '..', '..', '..');
/** What marks a file as a launcher written here (so a reinstall may replace it). */
const MARK = '# nsnet-cni launcher';

const shellQuote = (s: string): string => `'${s.replace(/'/gu, `'\\''`)}'`;

/** The launcher text for a package at `pkg`, run by `node`. */
export function launcherFor(template: string, pkg: string, node: string): string {
  let out = template;
  for (const [name, value] of [
    ['pkg', pkg],
    ['node', node],
  ] as const) {
    const line = new RegExp(`^${name}=$`, 'mu');
    if (!line.test(out)) throw new NsnetError('ERR_INTERNAL', `bin/nsnet-cni has no "${name}=" line to fill in`);
    out = out.replace(line, `${name}=${shellQuote(value)}`);
  }
  return out;
}

interface InstallOptions {
  binDir: string;
  force?: boolean;
}

function install(ctx: Context, o: InstallOptions): void {
  const dir = path.resolve(o.binDir);
  const template = fs.readFileSync(path.join(PACKAGE, 'bin', 'nsnet-cni'), 'utf8');
  if (!fs.existsSync(path.join(PACKAGE, 'dist', 'lib', 'cni', 'main.js'))) {
    throw new NsnetError('ERR_NOT_AVAILABLE', `${PACKAGE} is not built (no dist/lib/cni/main.js): run npm install in it`);
  }
  const text = launcherFor(template, PACKAGE, process.execPath);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const dest = path.join(dir, 'nsnet-cni');
  let existing: string | undefined;
  try {
    const st = fs.lstatSync(dest);
    existing = st.isFile() ? fs.readFileSync(dest, 'utf8') : '';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (existing !== undefined && !existing.includes(MARK) && !o.force) {
    throw new NsnetError('ERR_PLUGIN_EXISTS', `${dest} exists and is not an nsnet-cni launcher: remove it, or pass --force`, { path: dest });
  }
  // Atomically: a runtime running the plugin meanwhile sees the old file or the new one.
  const tmp = path.join(dir, `.nsnet-cni.${process.pid}.tmp`);
  fs.writeFileSync(tmp, text, { mode: 0o755 });
  fs.chmodSync(tmp, 0o755);
  fs.renameSync(tmp, dest);
  const client = ['build/Release/nsnet-cni', `prebuilds/linux-${process.arch}/nsnet-cni`].map((c) => path.join(PACKAGE, c)).find((c) => fs.existsSync(c));
  ctx.print(
    { installed: dest, package: PACKAGE, client: client ?? null, node: process.execPath },
    () =>
      `installed ${dest}\n  runs ${client ?? `${process.execPath} ${path.join(PACKAGE, 'dist/lib/cni/main.js')} (no native client was built: every call starts node)`}`,
  );
}

export function registerCni(program: Command, ctx: Context): void {
  const cni = program.command('cni').description('the nsnet-cni CNI plugin');
  example(cni, 'sudo nsnet cni install --bin-dir /opt/cni/bin');
  example(
    cni
      .command('install')
      .description('write the nsnet-cni plugin into a CNI plugin directory (a launcher naming this package by absolute path)')
      .requiredOption('--bin-dir <dir>', 'the CNI plugin directory (e.g. /opt/cni/bin)')
      .option('--force', 'replace a file of that name that nsnet did not write')
      .action((o: InstallOptions) => install(ctx, o)),
    'sudo nsnet cni install --bin-dir /opt/cni/bin',
  );
}
