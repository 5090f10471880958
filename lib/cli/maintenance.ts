/**
 * `nsnet gc | reconcile | doctor | agent`.
 */
import type { Command } from 'commander';
import { doctor, type DoctorReport } from '../doctor';
import { NsnetError } from '../errors';
import type { GcReport, ReconcileReport } from '../host-types';
import { type Context, example } from './context';
import { block, table } from './format';

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

/** doctor's report for people: modes, then what is missing or off, then warnings. */
function humanDoctor(r: DoctorReport): string {
  const modes = table(['MODE', 'AVAILABLE', 'MISSING'], Object.entries(r.modes).map(([m, s]) => [m, s.available ? 'yes' : 'no', s.missing.join(', ') || '-']));
  const missing = Object.entries(r.features).filter(([, f]) => !f.available).map(([n, f]) => `${n}${f.detail ? ` (${f.detail})` : ''}`);
  const host = block([
    ['Kernel', r.kernel],
    ['IPv4 forwarding', r.host.ipForward ? 'on' : 'off'],
    ['Unavailable features', list(missing)],
    ['Forward chains with policy drop', list(r.host.forwardDropChains.map((c) => `${c.family} ${c.table} ${c.chain}`))],
    ["nsnet's tables", [r.host.nsnetTables.inet ? 'inet nsnet' : '', r.host.nsnetTables.bridge ? 'bridge nsnet_l2' : ''].filter(Boolean).join(', ') || 'none yet'],
  ]);
  const warnings = r.warnings.map((w) => `warning: ${w.code}: ${w.message}`).join('\n');
  return [modes, host, warnings].filter(Boolean).join('\n\n');
}

/**
 * `nsnet doctor [--strict]`: what this kernel and host can do. The report is printed either way;
 * with --strict a warning, or bridge or overlay mode being unavailable, is a failed check
 * (status 8) — for provisioning scripts that must stop on a host nsnet would not work on.
 */
async function runDoctor(ctx: Context, opts: { strict?: boolean }): Promise<void> {
  const g = ctx.globals;
  const report = await doctor(g.hostNetns ? { netns: g.hostNetns } : {});
  ctx.print(report, () => humanDoctor(report));
  if (opts.strict) {
    const down = (['bridge', 'overlay'] as const).filter((m) => !report.modes[m].available);
    if (down.length || report.warnings.length)
      throw new NsnetError('ERR_CHECK_FAILED', `doctor: ${[...down.map((m) => `${m} mode is unavailable`), ...report.warnings.map((w) => w.code)].join('; ')}`);
  }
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
      .option('--strict', 'exit 8 when a warning is found or bridge/overlay mode cannot run')
      .action((opts: { strict?: boolean }) => runDoctor(ctx, opts)),
    'nsnet doctor --strict',
  );
  example(
    program.command('agent')
      .description('run the overlay control-plane agent of this host (publishes endpoints, programs peers)')
      .action(() => runAgent(ctx)),
    'nsnet agent',
  );
}
