/**
 * `nsnet gc | reconcile | doctor | agent`. doctor and the overlay agent are separate modules of
 * the library that load lazily: a build without them says ERR_NOT_AVAILABLE (status 7) instead
 * of failing to start. Each is one function here, to be wired to the module's API when it lands.
 */
import type { Command } from 'commander';
import { NsnetError } from '../errors';
import type { GcReport, ReconcileReport } from '../host-types';
import { type Context, example } from './context';
import { block } from './format';

/**
 * Loads `exportName` from a module of the library (a path relative to this file), or throws
 * ERR_NOT_AVAILABLE when the module, or that export, is not part of this build.
 */
export function loadOptional<T>(modulePath: string, exportName: string, what: string): T {
  let mod: Record<string, unknown>;
  try {
    mod = require(modulePath) as Record<string, unknown>;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    // Only the module itself being absent means "not available"; a module that fails to load is a bug.
    if (err.code === 'MODULE_NOT_FOUND' && err.message.includes(`'${modulePath}'`))
      throw new NsnetError('ERR_NOT_AVAILABLE', `${what} is not available in this build of nsnet yet`, { module: modulePath });
    throw e;
  }
  const fn = mod[exportName];
  if (typeof fn !== 'function') throw new NsnetError('ERR_NOT_AVAILABLE', `${what} is not available in this build of nsnet yet (${modulePath} has no ${exportName})`, { module: modulePath });
  return fn as T;
}

const list = (xs: string[]): string | undefined => (xs.length ? xs.join(', ') : undefined);

function humanGc(r: GcReport): string {
  if (!r.endpoints.length && !r.links.length && !r.firewallOwners.length) return 'nothing to collect';
  return block([['Removed endpoints', list(r.endpoints)], ['Removed links', list(r.links)], ['Removed firewall owners', list(r.firewallOwners)]]);
}

function humanReconcile(r: ReconcileReport): string {
  if (!r.networks.length && !r.endpoints.length && !r.firewallRebuilt) return 'the kernel matches the store: nothing to do';
  return block([['Networks restored', list(r.networks)], ['Endpoints restored', list(r.endpoints)], ['Firewall rebuilt', r.firewallRebuilt ? 'yes' : undefined]]);
}

/** `nsnet doctor`: wired to lib/doctor.ts when it lands (`doctor(opts)` → a report with `ok`). */
async function runDoctor(ctx: Context): Promise<void> {
  type Doctor = (opts: { stateDir?: string; netns?: string }) => Promise<{ ok?: boolean } & Record<string, unknown>>;
  const doctor = loadOptional<Doctor>('../doctor', 'doctor', 'nsnet doctor');
  const g = ctx.globals;
  const report = await doctor({ ...(g.stateDir ? { stateDir: g.stateDir } : {}), ...(g.hostNetns ? { netns: g.hostNetns } : {}) });
  ctx.print(report, () => JSON.stringify(report, null, 2));
  if (report.ok === false) throw new NsnetError('ERR_CHECK_FAILED', 'doctor found problems (see above)');
}

/** `nsnet agent`: wired to the overlay control plane's agent when it lands. */
async function runAgent(ctx: Context): Promise<void> {
  type Agent = (opts: { stateDir?: string; netns?: string }) => Promise<void>;
  const agent = loadOptional<Agent>('../overlay/agent', 'runAgent', 'the overlay agent (nsnet agent)');
  const g = ctx.globals;
  await agent({ ...(g.stateDir ? { stateDir: g.stateDir } : {}), ...(g.hostNetns ? { netns: g.hostNetns } : {}) });
}

export function registerMaintenance(program: Command, ctx: Context): void {
  example(
    program.command('gc')
      .description('remove what no record explains: endpoints whose namespace is gone, stray links and firewall elements')
      .action(async () => {
        const r = await ctx.withHost((host) => host.gc());
        ctx.print(r, () => humanGc(r));
      }),
    'nsnet gc',
  );
  example(
    program.command('reconcile')
      .description('make the kernel match the store again (e.g. after `nft flush ruleset`)')
      .action(async () => {
        const r = await ctx.withHost((host) => host.reconcile());
        ctx.print(r, () => humanReconcile(r));
      }),
    'nsnet reconcile',
  );
  example(
    program.command('doctor')
      .description('check this kernel and host for what nsnet needs, and say which modes work')
      .action(() => runDoctor(ctx)),
    'nsnet doctor',
  );
  example(
    program.command('agent')
      .description('run the overlay control-plane agent of this host (publishes endpoints, programs peers)')
      .action(() => runAgent(ctx)),
    'nsnet agent',
  );
}
