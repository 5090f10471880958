/**
 * Suite "ipv6": the firewall on a dual-stack network, driven directly through `Firewall` (the
 * façade's IPv6 publishing lands separately; see the notes) — IPv4 and IPv6 side by side, in the
 * same run, on the same world:
 *
 *   publish   `Firewall.publish` of one more port (then unpublished, untimed) when 10, 1,000 and
 *             10,000 ports of EACH family are already published (so 20,000 elements at the top),
 *             IPv4 and IPv6 samples taking turns; and the rule count at each level (`nft -j`).
 *   traffic   TCP throughput (iperf3 -t 3, one stream) from an external namespace E: to the host
 *             itself over IPv6 (host mode, the reference) and over IPv4, and to a container
 *             through a published port over IPv6 ([H]:8080 → [S]:80) and over IPv4.
 *
 * The world: H (the host) and E joined by a veth (198.18.0.1/24 + 2001:db8:18::1/64 — E .2 / ::2),
 * a bridge in H (10.89.0.1/16 + fd00:89::1/64) and one container S (10.89.0.2, fd00:89::2), all
 * made with `ip -batch`; the firewall is nsnet's, with the network and S's endpoint added as a
 * bridge driver would add them. Targets: IPv6 publishing flat from 10 to 10,000 ports (within
 * 1.5×), the rule count the same at every level and family, and IPv6 published-port throughput
 * at least 0.9× host mode over IPv6.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { Firewall, Netns, type FirewallPort } from '../lib/index';
import {
  globalBatch, ipBatch, round, run, sleep, startIn, stats, summarize,
  type Background, type Chart, type Suite, type SuiteOptions, type SummaryRow, type TargetResult, type WorkloadResult,
} from './common';
import { version } from './bridge';

const H = 'nsb6-host';
const E = 'nsb6-ext';
const S = 'nsb6-s';
const HOST4 = '198.18.0.1';
const HOST6 = '2001:db8:18::1';
const S4 = '10.89.0.2';
const S6 = 'fd00:89::2';
const LEVELS = [10, 1000, 10000];
const med = (s: number[]): number => stats(s).median;
const n = (x: number): string => x.toLocaleString('en-US');

function makeWorld(): void {
  globalBatch([`netns add ${H}`, `netns add ${E}`, `netns add ${S}`]);
  ipBatch(H, [
    'link set lo up',
    `link add ext0 type veth peer name eth0 netns ${E}`,
    `addr add ${HOST4}/24 dev ext0`, `addr add ${HOST6}/64 dev ext0 nodad`, 'link set ext0 up',
    'link add nsbr-b6 type bridge', 'addr add 10.89.0.1/16 dev nsbr-b6', 'addr add fd00:89::1/64 dev nsbr-b6 nodad', 'link set nsbr-b6 up',
    `link add veth-s type veth peer name eth0 netns ${S}`, 'link set veth-s master nsbr-b6 up',
  ]);
  ipBatch(E, ['link set lo up', 'addr add 198.18.0.2/24 dev eth0', 'addr add 2001:db8:18::2/64 dev eth0 nodad', 'link set eth0 up']);
  ipBatch(S, [
    'link set lo up', `addr add ${S4}/16 dev eth0`, `addr add ${S6}/64 dev eth0 nodad`, 'link set eth0 up',
    'route add default via 10.89.0.1', 'route add default via fd00:89::1 dev eth0',
  ]);
}

function dropWorld(): void {
  for (const ns of [S, E, H]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

function iperf(client: string, ip: string, port: number, seconds: number): number {
  const r = run('ip', ['netns', 'exec', client, 'iperf3', '-c', ip, '-p', String(port), '-t', String(seconds), '-J']);
  const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second / 1e9;
}

/** `hostIp` per family: every address of that family only. */
const one = (family: 4 | 6, hostPort: number): FirewallPort => ({
  protocol: 'tcp', hostPort, containerPort: 80, ...(family === 4 ? { hostIp: '0.0.0.0', containerIp: S4 } : { hostIp: '::', containerIp6: S6 }),
});

export const ipv6Suite: Suite = {
  name: 'ipv6',
  title: 'IPv6 on a dual-stack network: publishing cost with 10 / 1,000 / 10,000 ports, and published-port throughput against host mode',
  async run(o: SuiteOptions) {
    const log = o.log;
    const reps = Math.max(1, Math.round(3 * o.scale));
    const perLevel = Math.max(5, Math.round(30 * o.scale));
    const seconds = o.scale < 1 ? 1 : 3;
    const bg: Background[] = [];
    let fw: Firewall | undefined;
    try {
      makeWorld();
      fw = await Firewall.open({ netns: H });
      await fw.ensure();
      const net = { name: 'b6', bridge: 'nsbr-b6', subnet: '10.89.0.0/16', subnet6: 'fd00:89::/64' };
      for (const [k, val] of Object.entries(Firewall.sysctls(net))) await Netns.sysctl(H, k, val);
      await fw.addNetwork(net);
      await fw.connectEndpoint({ id: 's', bridge: 'nsbr-b6', hostIfname: 'veth-s', ipv4: S4, ipv6: S6, ports: [{ protocol: 'tcp', hostPort: 8080, containerPort: 80 }] });
      const rules = (): number => (JSON.parse(run('ip', ['netns', 'exec', H, 'nft', '-j', 'list', 'ruleset']).stdout).nftables as Record<string, unknown>[]).filter((x) => 'rule' in x).length;

      // ---------------------------------------------------------------- publishing cost
      const pub: Record<4 | 6, Record<number, number[]>> = { 4: {}, 6: {} };
      const ruleCount: Record<number, number> = {};
      let filled = 0;
      let next = 20000; // the timed ports: above the fill (which uses 30000..39999 of each family)
      for (const level of LEVELS) {
        // Fill both families up to `level` published ports each, 1,000 per call.
        while (filled < level) {
          const count = Math.min(1000, level - filled);
          const ports = Array.from({ length: count }, (_, i) => 30000 + filled + i);
          await fw.publish(`fill-${filled}`, [...ports.map((p) => one(4, p)), ...ports.map((p) => one(6, p))]);
          filled += count;
        }
        ruleCount[level] = rules();
        for (const f of [4, 6] as const) pub[f][level] = [];
        for (let i = 0; i < perLevel; i++) {
          for (const f of [4, 6] as const) {
            const port = next++;
            const t0 = process.hrtime.bigint();
            await fw.publish(`timed-${port}`, [one(f, port)]);
            pub[f][level]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
            await fw.unpublish(`timed-${port}`);
          }
        }
        log(`  at ${n(level)} ports of each family: one more IPv4 port ${med(pub[4][level]!).toFixed(2)} ms, IPv6 ${med(pub[6][level]!).toFixed(2)} ms; ${ruleCount[level]} rules`);
      }
      for (let k = 0; k < filled; k += 1000) await fw.unpublish(`fill-${k}`);

      // ---------------------------------------------------------------- traffic
      const gbps: Record<string, number[]> = {};
      let trafficNote = '';
      if (!fs.existsSync('/usr/bin/iperf3')) {
        trafficNote = 'not measured: iperf3 is missing (sudo sh scripts/bench-peers.sh installs it)';
      } else {
        bg.push(await startIn(H, ['iperf3', '-s', '-p', '80']), await startIn(S, ['iperf3', '-s', '-p', '80']));
        await sleep(300);
        const paths: [string, string, number][] = [['host6', HOST6, 80], ['published6', HOST6, 8080], ['host4', HOST4, 80], ['published4', HOST4, 8080]];
        for (let r = 0; r < reps; r++) {
          for (const [id, ip, port] of paths) {
            const g = iperf(E, ip, port, seconds);
            (gbps[id] ??= []).push(g);
            log(`  ${id} rep ${r + 1}: ${g.toFixed(2)} Gbit/s`);
          }
        }
      }

      // ---------------------------------------------------------------- results
      const workloads: WorkloadResult[] = LEVELS.map((level) => {
        const rows: SummaryRow[] = ([4, 6] as const).map((f) => ({
          tool: f === 4 ? 'nsnet-ipv4' : 'nsnet-ipv6', nsnet: true, label: `Firewall.publish of one ${f === 4 ? '0.0.0.0' : '[::]'} port`,
          items: 1, samples: pub[f][level]!, timing: 'in process',
        }));
        return {
          id: `publish-${level}`, title: `publish one more port, ${n(level)} of each family already published`, unit: 'port', reference: 'nsnet-ipv4',
          note: `Firewall-level (no veth, no store): the element transaction and its point queries. ${ruleCount[level]} rules in nsnet's tables.`,
          tools: summarize(rows, 'nsnet-ipv4'),
        };
      });
      const GBPS = { unit: 'Gbit/s', higher_is_better: true };
      const LABEL: Record<string, string> = {
        host6: 'host mode over IPv6: E → [H]:80', published6: 'nsnet published port over IPv6: E → [H]:8080 → [S]:80',
        host4: 'host mode over IPv4: E → H:80', published4: 'nsnet published port over IPv4: E → H:8080 → S:80',
      };
      if (gbps.host6) {
        workloads.push({
          id: 'throughput', title: 'TCP throughput (iperf3, one stream), host mode and published port, both families', unit: 'stream', reference: 'host6', value: GBPS,
          note: `iperf3 -t ${seconds}, ${reps} repetitions per path, paths taking turns.`,
          tools: summarize(Object.keys(LABEL).map((id) => ({ tool: id, nsnet: id.startsWith('published'), label: LABEL[id]!, items: 1, samples: gbps[id]!, timing: 'iperf3' })), 'host6', GBPS),
        });
      }

      const targets: TargetResult[] = [];
      const lo = pub[6][LEVELS[0]!]!;
      const hi = pub[6][10000]!;
      targets.push({
        id: 'publish6-flat', text: 'publishing one more IPv6 port costs the same (within 1.5×) with 10 and with 10,000 ports of each family published',
        met: med(hi) <= 1.5 * med(lo),
        detail: `IPv6 ${LEVELS.map((l) => `at ${n(l)}: ${med(pub[6][l]!).toFixed(2)} ms`).join(', ')}; IPv4 ${LEVELS.map((l) => `at ${n(l)}: ${med(pub[4][l]!).toFixed(2)} ms`).join(', ')}`,
      });
      targets.push({
        id: 'rules6-flat', text: "nsnet's rule count is the same with 10 and with 10,000 ports of each family published",
        met: new Set(Object.values(ruleCount)).size === 1, detail: `rules at ${LEVELS.map(n).join(' / ')}: ${LEVELS.map((l) => ruleCount[l]).join(' / ')}`,
      });
      if (gbps.host6) {
        const ratio = med(gbps.published6!) / med(gbps.host6);
        targets.push({ id: 'throughput6', text: 'IPv6 published-port throughput is at least 0.9× host mode over IPv6', met: ratio >= 0.9,
          detail: `published ${med(gbps.published6!).toFixed(2)} Gbit/s, host mode ${med(gbps.host6).toFixed(2)} Gbit/s (${ratio.toFixed(2)}×); IPv4: ${(med(gbps.published4!) / med(gbps.host4!)).toFixed(2)}×` });
      } else {
        targets.push({ id: 'throughput6', text: 'IPv6 published-port throughput is at least 0.9× host mode over IPv6', met: false, status: 'not measured', detail: trafficNote });
      }
      const charts: Chart[] = [{
        id: 'publish6', title: 'Firewall.publish of one more port against ports published (each family)', x_label: 'ports of each family published', y_label: 'ms (median, whisker to p95)', log_x: true,
        series: ([4, 6] as const).map((f) => ({ name: `IPv${f}`, nsnet: true, points: LEVELS.map((l) => ({ x: l, y: round(med(pub[f][l]!), 3), p95: round(stats(pub[f][l]!).p95, 3) })) })),
      }];
      return {
        workloads, targets, charts,
        notes: [
          'Driven through Firewall directly: the façade (NetworkHost) publishing IPv6, and the peers (CNI portmap with an IPv6 hostIP range, netavark with an IPv6 subnet) in the ports and dataplane suites, come with the façade\'s IPv6 support.',
          ...(trafficNote ? [trafficNote] : []),
        ],
        ...(gbps.host6 ? { iperf3: version('iperf3', ['--version']) } : {}),
        rules: ruleCount,
      };
    } finally {
      for (const b of bg.splice(0)) await b.stop();
      fw?.close();
      dropWorld();
    }
  },
};
