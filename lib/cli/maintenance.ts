/**
 * `nsnet gc | reconcile | doctor | agent`.
 */
import type { Command } from 'commander';
import type { DoctorReport } from '../doctor';
import { NsnetError } from '../errors';
import type { GcReport, ReconcileReport } from '../host-types';
import { type Context, example } from './context';
import { block, table } from './format';

const list = (xs: string[]): string | undefined => (xs.length ? xs.join(', ') : undefined);

function humanGc(r: GcReport): string {
  const damaged = r.damaged.map((d) => `  ${d.document.file}: ${d.action} (kept as ${d.keptAs})\n    ${d.detail}\n`).join('');
  if (!r.endpoints.length && !r.links.length && !r.namespaces?.length && !r.firewallOwners.length && !damaged) return 'nothing to collect';
  const removed = block([
    ['Removed endpoints', list(r.endpoints)],
    ['Removed links', list(r.links)],
    ...(r.namespaces?.length ? [['Removed namespaces', list(r.namespaces)] as [string, string]] : []),
    ['Removed firewall owners', list(r.firewallOwners)],
  ]);
  return (damaged ? `Damaged state documents:\n${damaged}` : '') + (removed.trim() ? removed : '');
}

function humanReconcile(r: ReconcileReport): string {
  if (!r.networks.length && !r.endpoints.length && !r.firewallRebuilt) return 'the kernel matches the store: nothing to do';
  return block([
    ['Networks restored', list(r.networks)],
    ['Endpoints restored', list(r.endpoints)],
    ['Firewall rebuilt', r.firewallRebuilt ? 'yes' : undefined],
  ]);
}

function humanStore(s: NonNullable<DoctorReport['store']>): string {
  if (!s.exists) return `${s.dir}: nothing recorded yet`;
  if (!s.readable) return `${s.dir}: cannot be read (${s.detail ?? 'unknown'})`;
  return `${s.dir}: ${s.damaged.length ? `${s.damaged.length} damaged document(s), see the warnings` : 'every document readable'}`;
}

/** doctor's report for people: modes, then what is missing or off, then warnings. */
function humanDoctor(r: DoctorReport): string {
  const modes = table(
    ['MODE', 'AVAILABLE', 'MISSING'],
    Object.entries(r.modes).map(([m, s]) => [m, s.available ? 'yes' : 'no', s.missing.join(', ') || '-']),
  );
  const missing = Object.entries(r.features)
    .filter(([, f]) => !f.available)
    .map(([n, f]) => `${n}${f.detail ? ` (${f.detail})` : ''}`);
  const host = block([
    ['Kernel', r.kernel],
    ['IPv4 forwarding', r.host.ipForward ? 'on' : 'off'],
    ['IPv6 forwarding', r.host.ipv6Forward === undefined ? 'no IPv6' : r.host.ipv6Forward ? 'on' : 'off'],
    [
      'Dual-stack networks',
      r.features.ipv6_forwarding.available && r.features.nft_nat_ipv6.available
        ? 'supported (IPv6 forwarding and NAT)'
        : 'not supported on this kernel (see ipv6_forwarding, nft_nat_ipv6 below)',
    ],
    ['Unavailable features', list(missing)],
    ['Forward chains with policy drop', list(r.host.forwardDropChains.map((c) => `${c.family} ${c.table} ${c.chain}`))],
    [
      "nsnet's tables",
      [r.host.nsnetTables.inet ? 'inet nsnet' : '', r.host.nsnetTables.bridge ? 'bridge nsnet_l2' : ''].filter(Boolean).join(', ') || 'none yet',
    ],
    ['State', r.store && humanStore(r.store)],
  ]);
  const warnings = r.warnings.map((w) => `warning: ${w.code}: ${w.message}`).join('\n');
  return [modes, host, warnings].filter(Boolean).join('\n\n');
}

/**
 * `nsnet doctor [--strict]`: what this kernel and host can do. The report is printed either way;
 * with --strict a warning (a damaged state document is one), or bridge or overlay mode being unavailable, is a failed check
 * (status 8) — for provisioning scripts that must stop on a host nsnet would not work on.
 */
async function runDoctor(ctx: Context, opts: { strict?: boolean }): Promise<void> {
  const g = ctx.globals;
  const { doctor } = await import('../doctor'); // loaded on use
  const report = await doctor({ ...(g.hostNetns ? { netns: g.hostNetns } : {}), ...(g.stateDir !== undefined ? { stateDir: g.stateDir } : {}) });
  ctx.print(report, () => humanDoctor(report));
  if (opts.strict) {
    const down = (['bridge', 'overlay'] as const).filter((m) => !report.modes[m].available);
    if (down.length || report.warnings.length)
      throw new NsnetError('ERR_CHECK_FAILED', `doctor: ${[...down.map((m) => `${m} mode is unavailable`), ...report.warnings.map((w) => w.code)].join('; ')}`);
  }
}

/**
 * `nsnet agent`: this host's overlay agent as a long-lived process — it keeps the host's lease,
 * watches the other hosts and programs their routes, neighbours and FDB entries, until SIGINT or
 * SIGTERM (then it leaves cleanly: its lease is revoked, the others withdraw its routes).
 */
async function runAgent(ctx: Context): Promise<void> {
  if (ctx.globals.controlPlane === undefined)
    throw new NsnetError('ERR_INVALID_ARGUMENT', 'nsnet agent needs --control-plane (etcd URLs or a directory the hosts share)', { option: 'control-plane' });
  const host = await ctx.openHost();
  try {
    const agent = host.runAgent();
    agent.on('peers', (e: { network: string; added: unknown[]; updated: unknown[]; removed: unknown[] }) =>
      process.stderr.write(`nsnet agent: ${e.network}: ${e.added.length} peer(s) added, ${e.updated.length} updated, ${e.removed.length} removed\n`),
    );
    agent.on('lease-lost', () => process.stderr.write('nsnet agent: the control plane is unreachable; retrying\n'));
    agent.on('lease-recovered', () => process.stderr.write('nsnet agent: the control plane is back\n'));
    process.stderr.write('nsnet agent: running (SIGINT or SIGTERM to stop)\n');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
  } finally {
    await host.close();
  }
}

export function registerMaintenance(program: Command, ctx: Context): void {
  example(
    program
      .command('gc')
      .description(
        "repair damaged state documents (rebuilt from the kernel's marks, or set aside and released), then remove what no record explains: endpoints whose namespace is gone, stray links and firewall elements",
      )
      .action(async () => {
        const r = await ctx.withHost((host) => host.gc());
        ctx.print(r, () => humanGc(r));
      }),
    'nsnet gc',
  );
  example(
    program
      .command('reconcile')
      .description('make the kernel match the store again (e.g. after `nft flush ruleset`)')
      .action(async () => {
        const r = await ctx.withHost((host) => host.reconcile());
        ctx.print(r, () => humanReconcile(r));
      }),
    'nsnet reconcile',
  );
  example(
    program
      .command('doctor')
      .description('check this kernel, host and state directory for what nsnet needs (damaged state documents are listed), and say which modes work')
      .option('--strict', 'exit 8 when a warning is found or bridge/overlay mode cannot run')
      .action((opts: { strict?: boolean }) => runDoctor(ctx, opts)),
    'nsnet doctor --strict',
  );
  example(
    program
      .command('agent')
      .description("run this host's overlay agent until SIGINT/SIGTERM (keeps its lease, programs the other hosts' routes, neighbours and FDB)")
      .action(() => runAgent(ctx)),
    'nsnet agent --control-plane http://10.0.0.1:2379 --host-id h1 --underlay eth0',
  );
}
