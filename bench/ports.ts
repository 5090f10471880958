/**
 * Suite "ports": what publishing one more port costs when 10, 1,000 and 10,000 ports are
 * already published, and how many firewall rules that state takes — nsnet (map elements under
 * a fixed rule skeleton) against CNI portmap and netavark (iptables chains that grow).
 *
 * The state: containers with 10 published TCP ports each on one bridge network — 1, 100 and
 * 1,000 containers. (10,000 containers with one port each cannot exist on one network: a Linux
 * bridge takes at most 1,024 ports.) "One more port" is a real connect/ADD of a container that
 * publishes one port, timed as in the bridge suite.
 *
 *   nsnet  one pass per repetition, for real: container 1 (10 ports), 3 timed one-port
 *          connects, containers 2..100, 3 timed, containers 101..1,000, 3 timed
 *   peers  per repetition and level a fresh host: containers 1 and 2 for real (10 ports each),
 *          3..N replayed (bench/peers.ts; proved against real ADDs of 4 containers × 10 ports
 *          at the start), then the timed ADDs: 3 at 10 and 1,000 ports, 1 at 10,000 (there one
 *          ADD takes many seconds: every iptables process reads the whole ruleset)
 *
 * Rule counts before the timed ADDs: nsnet `nft -j list ruleset`; peers `iptables-save | grep -c '^-A'`.
 *
 * The same again over IPv6, in the same run: a dual-stack network (10.88.0.0/16 + fd00:88::/64),
 * every port published on IPv6 only (nsnet `hostIp: '::'`, portmap and netavark `hostIP` `::`),
 * the peers' rules counted in iptables and ip6tables, their replay proved for IPv6 as well.
 */
import { round, sleep, stats, summarize, type Chart, type Suite, type SuiteOptions, type SummaryRow, type TargetResult, type WorkloadResult } from './common';
import { proofNote, processCosts, requirePeers, version } from './bridge';
import { NETAVARK, PEERS, PORT_SLOTS, proveReplay, withHost, type Family, type Host, type ReplayProof, type ToolId } from './peers';

const TOOLS: ToolId[] = ['nsnet', 'cni', 'netavark'];
/** Ports already published at each level (containers × 10). */
const LEVELS = [10, 1000, 10000];
/** Serials of the timed one-port containers: after every state container (hostPort stays < 65,536). */
const MEASURED_FROM = 2001;
const timedAt = (level: number, tool: ToolId): number => (tool !== 'nsnet' && level >= 10000 ? 1 : 3);
const med = (s: number[]): number => stats(s).median;
const n = (x: number): string => x.toLocaleString('en-US');

interface Level {
  level: number;
  add: number[];
  rules: number;
  nft: number;
  build_s: number;
}

/** Connects the timed one-port containers; returns their ms. */
async function timed(h: Host, count: number, next: { serial: number }): Promise<number[]> {
  const out: number[] = [];
  h.containers(next.serial, next.serial + count - 1);
  await sleep(200);
  for (let i = 0; i < count; i++) {
    const s = next.serial++;
    out.push(await h.driver.connect(s, 1));
    h.driver.verify(s);
  }
  return out;
}

/** The families measured, and how a row or target names them. */
const FAMILIES: (4 | 6)[] = [4, 6];
const fam = (f: Family): string => (f === 6 ? ' over IPv6' : '');

async function nsnetPass(log: (m: string) => void, family: 4 | 6): Promise<Level[]> {
  return withHost(
    'nsnet',
    async (h) => {
      const top = LEVELS[LEVELS.length - 1]! / PORT_SLOTS;
      h.containers(1, top);
      await sleep(500);
      const out: Level[] = [];
      const next = { serial: MEASURED_FROM };
      let connected = 0;
      for (const level of LEVELS) {
        const t0 = Date.now();
        while (connected < level / PORT_SLOTS) await h.driver.connect(++connected, PORT_SLOTS);
        const r = h.driver.rules();
        const add = await timed(h, timedAt(level, 'nsnet'), next);
        out.push({ level, add, rules: r.rules, nft: r.nft, build_s: round((Date.now() - t0) / 1000, 1) });
        log(`  nsnet${fam(family)} at ${n(level)} ports: one more port ${add.map((x) => x.toFixed(1)).join(', ')} ms, ${r.rules} rules`);
      }
      return out;
    },
    family,
  );
}

async function peerLevel(tool: ToolId, level: number, log: (m: string) => void, family: 4 | 6): Promise<Level> {
  return withHost(
    tool,
    async (h) => {
      const t0 = Date.now();
      const containers = level / PORT_SLOTS;
      if (containers === 1) {
        h.containers(1, 1);
        await h.driver.connect(1, PORT_SLOTS);
      } else {
        await h.replay!.start(h, PORT_SLOTS);
        h.replay!.apply(3, containers);
      }
      const r = h.driver.rules();
      const build = (Date.now() - t0) / 1000;
      const add = await timed(h, timedAt(level, tool), { serial: MEASURED_FROM });
      log(
        `  ${tool}${fam(family)} at ${n(level)} ports (${containers > 1 ? `3..${containers} replayed, ` : ''}${build.toFixed(1)} s): one more port ${add.map((x) => x.toFixed(0)).join(', ')} ms, ${n(r.rules)} rules`,
      );
      return { level, add, rules: r.rules, nft: r.nft, build_s: round(build, 1) };
    },
    family,
  );
}

export const portsSuite: Suite = {
  name: 'ports',
  title: 'port-publishing scale: one more published port with 10, 1,000 and 10,000 already published',
  async run(o: SuiteOptions) {
    requirePeers();
    const log = o.log;
    const { execMs } = await processCosts();
    const proofs: ReplayProof[] = [];
    for (const family of FAMILIES) {
      for (const t of PEERS as ('cni' | 'netavark')[]) {
        const p = await proveReplay(t, 4, PORT_SLOTS, family);
        proofs.push(p);
        log(
          `  replay proof ${t}${fam(family)} (4 containers × ${PORT_SLOTS} ports): rules ${p.rules_equal ? 'identical' : 'DIFFERENT'}, files ${p.files_equal ? 'identical' : 'DIFFERENT'}`,
        );
      }
    }
    const proven = (t: ToolId, family: 4 | 6): boolean => proofs.some((p) => p.tool === t && (p.family ?? 4) === family && p.rules_equal && p.files_equal);
    const reps = Math.max(1, Math.round(3 * o.scale));
    const byFamily: Record<4 | 6, Record<ToolId, Level[][]>> = { 4: { nsnet: [], cni: [], netavark: [] }, 6: { nsnet: [], cni: [], netavark: [] } };
    for (let r = 0; r < reps; r++) {
      log(`repetition ${r + 1}/${reps}`);
      for (const family of FAMILIES) {
        const results = byFamily[family];
        results.nsnet.push(await nsnetPass(log, family));
        for (const t of PEERS) {
          const ls: Level[] = [];
          for (const level of LEVELS) if (level === PORT_SLOTS || proven(t, family)) ls.push(await peerLevel(t, level, log, family));
          results[t].push(ls);
        }
      }
    }

    const workloads: WorkloadResult[] = [];
    const charts: Chart[] = [];
    const targets: TargetResult[] = [];
    for (const family of FAMILIES) {
      const r = rowsFor(byFamily[family], family, execMs);
      workloads.push(...r.workloads);
      charts.push(...r.charts);
      targets.push(...r.targets);
    }
    if (proofs.some((p) => !p.rules_equal || !p.files_equal)) {
      targets.push({
        id: 'replay-proof',
        text: 'the replayed peer state equals real ADDs',
        met: false,
        detail: proofs.map((p) => `${p.tool}${fam(p.family ?? 4)}: ${(p.difference ?? ['equal']).join('; ')}`).join(' / '),
      });
    }
    return {
      workloads,
      targets,
      charts,
      notes: [
        proofNote(proofs, ` The timed containers publish 1 port each and are numbered from ${MEASURED_FROM}.`),
        'The IPv6 rows: a dual-stack network, every port published on IPv6 only (nsnet hostIp "::", portmap hostIP "::", netavark host_ip "::"); the peers\' rule counts include ip6tables.',
        "nsnet on a dual-stack network: a connect with 1,000 containers on the bridge costs more than with 10 whatever the ports' family — the same with 10,000 IPv4 ports or 10,000 IPv6 ports published, and for a connect publishing an IPv4 port (a control run: 1,000 containers × 10 ports on 0.0.0.0 or on ::, then connects publishing one port on :: or on 0.0.0.0: medians 28–41 ms against 18 ms with 10 containers, 14 ms on an IPv4-only network with 1,000). The growth is the dual-stack bridge's (the containers' IPv6 link-local and multicast traffic reaches every bridge port), not the IPv6 elements: publishing itself is point lookups and element additions either way.",
      ],
      versions: { netavark: version(NETAVARK, ['--version']), iptables: version('iptables', ['--version']) },
      replay_proof: proofs,
      levels: Object.fromEntries(
        FAMILIES.map((f) => [
          `ipv${f}`,
          Object.fromEntries(TOOLS.map((t) => [t, byFamily[f][t].map((rep) => rep.map((l) => ({ ...l, add: l.add.map((x) => round(x, 2)) })))])),
        ]),
      ),
    };
  },
};

/** The workloads, charts and targets of one family's results. */
function rowsFor(results: Record<ToolId, Level[][]>, family: 4 | 6, execMs: number): { workloads: WorkloadResult[]; charts: Chart[]; targets: TargetResult[] } {
  const six = family === 6 ? '6' : '';
  const over = fam(family);
  const at = (t: ToolId, level: number): Level[] => results[t].map((rep) => rep.find((l) => l.level === level)).filter((l): l is Level => !!l);
  const LABEL: Record<ToolId, string> = {
    nsnet: 'nsnet connect() of a container publishing 1 port',
    cni: 'CNI bridge + host-local + portmap ADD, 1 port',
    netavark: 'netavark setup, 1 port, NETAVARK_FW=iptables',
  };
  const TIMING: Record<ToolId, string> = { nsnet: 'in process', cni: 'whole processes', netavark: 'whole process' };
  const workloads: WorkloadResult[] = LEVELS.map((level) => {
    const rows: SummaryRow[] = TOOLS.filter((t) => at(t, level).length).map((t) => {
      const groups = at(t, level).map((l) => l.add);
      return { tool: t, label: LABEL[t], items: 1, samples: groups.flat(), groups, timing: TIMING[t] };
    });
    const ref = rows.filter((r) => r.tool !== 'nsnet').sort((a, b) => med(a.samples) - med(b.samples))[0]?.tool ?? 'nsnet';
    const rules = TOOLS.map((t) => at(t, level)[0])
      .map((l, i) => (l ? `${TOOLS[i]} ${n(l.rules)}` : ''))
      .filter(Boolean)
      .join(', ');
    return {
      id: `publish${six}-${level}`,
      title: `publish one more port${over}, ${n(level)} already published (${n(level / PORT_SLOTS)} container${level > PORT_SLOTS ? 's' : ''} × ${PORT_SLOTS})`,
      unit: 'container',
      reference: ref,
      note:
        `Rules before the timed ADDs: ${rules}. ${level > PORT_SLOTS ? "nsnet connected its containers for real; the peers' containers 3.. were replayed (see the notes). " : ''}` +
        `Peers run as processes under \`ip netns exec\` (~${execMs.toFixed(1)} ms each); nsnet in process.`,
      tools: summarize(rows, ref),
    };
  });

  const rulesAt = (t: ToolId, level: number): number | undefined => at(t, level)[0]?.rules;
  const charts: Chart[] = [
    {
      id: `publish${six}`,
      title: `publish one more port${over} against ports already published`,
      x_label: 'ports already published',
      y_label: 'ms (median, whisker to p95)',
      log_x: true,
      series: TOOLS.map((t) => ({
        name: t,
        nsnet: t === 'nsnet',
        points: LEVELS.filter((l) => at(t, l).length).map((l) => {
          const s = at(t, l).flatMap((x) => x.add);
          return { x: l, y: round(med(s), 2), p95: round(stats(s).p95, 2) };
        }),
      })),
    },
    {
      id: `rules${six}`,
      title: `firewall rules against ports published${over}`,
      x_label: 'ports published',
      y_label: family === 6 ? 'rules (nsnet: nft; peers: iptables + ip6tables)' : 'rules (nsnet: nft; peers: iptables)',
      log_x: true,
      series: TOOLS.map((t) => ({
        name: t,
        nsnet: t === 'nsnet',
        points: LEVELS.filter((l) => rulesAt(t, l) !== undefined).map((l) => ({ x: l, y: rulesAt(t, l)! })),
      })),
    },
  ];

  const targets: TargetResult[] = [];
  const lo = at('nsnet', LEVELS[0]!).flatMap((l) => l.add);
  const hi = at('nsnet', 10000).flatMap((l) => l.add);
  const growth = (t: ToolId): string => {
    const a = at(t, LEVELS[0]!).flatMap((l) => l.add);
    const b = at(t, 10000).flatMap((l) => l.add);
    return a.length && b.length ? `${t} ${med(a).toFixed(0)} → ${med(b).toFixed(0)} ms (${(med(b) / med(a)).toFixed(1)}×)` : `${t} not measured at 10,000`;
  };
  targets.push({
    id: `publish${six}-flat`,
    text: `publishing one more port${over} costs nsnet the same (within 1.5×) with 10 and with 10,000 ports published`,
    met: med(hi) <= 1.5 * med(lo),
    detail: `nsnet ${LEVELS.map((l) => `at ${n(l)}: ${med(at('nsnet', l).flatMap((x) => x.add)).toFixed(1)} ms`).join(', ')} (${(med(hi) / med(lo)).toFixed(2)}× from 10 to 10,000); the peers grow: ${PEERS.map(growth).join('; ')}`,
  });
  const nsRules = new Set(LEVELS.map((l) => rulesAt('nsnet', l)));
  targets.push({
    id: `publish${six}-rules-flat`,
    text: `nsnet's rule count is the same with 10 and with 10,000 ports published${over}`,
    met: nsRules.size === 1,
    detail: `rules at ${LEVELS.map(n).join(' / ')} ports: ${TOOLS.map((t) => `${t} ${LEVELS.map((l) => (rulesAt(t, l) === undefined ? '–' : n(rulesAt(t, l)!))).join(' / ')}`).join('; ')}`,
  });
  return { workloads, charts, targets };
}
