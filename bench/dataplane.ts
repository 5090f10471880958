/**
 * Suite "dataplane": what traffic costs on each path a container network gives, against host
 * mode — TCP throughput (iperf3) and request latency (a small python client) — and the
 * first-packet cost of a published port with 10,000 other ports published, nsnet (a map
 * lookup) against CNI portmap (a linear chain of iptables rules).
 *
 * The world of one tool: a "host" namespace H and an "external" namespace E joined by a veth
 * (E 198.18.0.2/24 — H 198.18.0.1/24, the RFC 2544 benchmarking range), the tool's bridge
 * network in H (10.88.0.0/16) and its containers. Servers (iperf3 -s on port 80, a python
 * echo server on 81) run in the server's namespace; clients in the client's.
 *
 *   host                 client in E → server in H itself at 198.18.0.1 (a host-mode container
 *                        uses the host's own stack: what it gets is one veth hop, no bridge, no
 *                        NAT). The reference of every panel.
 *   nsnet-bridge-c2c     client in container A → server in container S, both on nsnet's
 *                        bridge: veth, bridge, veth, nsnet's forward chain
 *   nsnet-published      client in E → 198.18.0.1:hostPort, DNAT'd by nsnet to S:80
 *   nsnet-published-10k  the same after 1,000 more containers × 10 ports were connected
 *                        (10,000 other published ports; S disconnected and connected again, last)
 *   cni-published        the same path through CNI bridge + portmap (server container S only)
 *   cni-published-10k    the same with 10,000 other ports: containers 1 and 2 real, 3..1,000
 *                        replayed (bench/peers.ts), then S deleted and added again, so its
 *                        rule is the last of CNI-HOSTPORT-DNAT (a container started last)
 *   overlay              container on host 1 → container on host 2 across VXLAN, when this
 *                        build has the overlay mode (see overlayPath below); "not available
 *                        yet" otherwise
 *
 * Over IPv6, in the same worlds (the tools' networks are dual-stack, 10.88.0.0/16 + fd00:88::/64,
 * their ports published on both families; E 2001:2::2/64 — H 2001:2::1/64, RFC 5180's
 * benchmarking range): host6, nsnet-published6, nsnet-published6-10k (10,000 other ports of each
 * family), cni-published6 and cni-published6-10k, the same measures.
 *
 * Measures per path and repetition (3, the paths taking turns): iperf3 -t 3 (Gbit/s received),
 * 300 short connections (connect time = SYN to SYN/ACK through the first-packet path, and
 * connect + 1-byte request/response + close), and 2,000 round trips of 1 byte on one connection.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NetworkHost } from '../lib/index';
import {
  ipBatch,
  round,
  run,
  sleep,
  startIn,
  stats,
  summarize,
  PYTHON,
  type Background,
  type Chart,
  type Suite,
  type SuiteOptions,
  type SummaryRow,
  type TargetResult,
  type WorkloadResult,
} from './common';
import { requirePeers, version } from './bridge';
import { PORT_SLOTS, hostPort, netnsFile, proveReplay, withHost, type Host, type ReplayProof, type ToolId } from './peers';

const HOST_IP = '198.18.0.1';
const EXT_IP = '198.18.0.2';
const HOST_IP6 = '2001:2::1';
const EXT_IP6 = '2001:2::2';
/** The server container's serial (its host ports: hostPort(S, 0) → 80 iperf3, hostPort(S, 1) → 81 echo). */
const S = 3001;
/** The client container for container-to-container traffic. */
const A = 3002;
const OTHERS = 1000; // × 10 ports

const ECHO_SERVER = `
import socket, sys, threading
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(('::', int(sys.argv[1]))); s.listen(128)
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        d = c.recv(64)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

const LATENCY_CLIENT = `
import socket, sys, time, json
ip, port, conns, rts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ns = time.perf_counter_ns
fam = socket.AF_INET6 if ':' in ip else socket.AF_INET
connect, txn, rr = [], [], []
for i in range(conns):
    t0 = ns(); c = socket.socket(fam); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.connect((ip, port)); t1 = ns()
    c.sendall(b'x'); c.recv(1); c.close(); t2 = ns()
    connect.append((t1 - t0) / 1000); txn.append((t2 - t0) / 1000)
c = socket.socket(fam); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1); c.connect((ip, port))
for i in range(50): c.sendall(b'x'); c.recv(1)
for i in range(rts):
    t0 = ns(); c.sendall(b'x'); c.recv(1); rr.append((ns() - t0) / 1000)
c.close()
print(json.dumps({'connect': connect, 'txn': txn, 'rr': rr}))
`;

interface Path {
  id: string;
  label: string;
  nsnet: boolean;
  /** The client's namespace and where it connects (iperf3 port, echo port). */
  client: string;
  ip: string;
  iperfPort: number;
  echoPort: number;
}

interface Sample {
  gbps: number;
  connect: number[];
  txn: number[];
  rr: number[];
}

function iperf(p: Path, seconds: number): number {
  const r = run('ip', ['netns', 'exec', p.client, 'iperf3', '-c', p.ip, '-p', String(p.iperfPort), '-t', String(seconds), '-J']);
  const j = JSON.parse(r.stdout) as { error?: string; end: { sum_received?: { bits_per_second: number } } };
  if (!j.end?.sum_received) throw new Error(`iperf3 on ${p.id} (${p.ip}:${p.iperfPort}): ${j.error ?? 'no result'}`);
  return j.end.sum_received.bits_per_second / 1e9;
}

/**
 * Waits until each path's echo server answers through it (a container just connected may take a
 * moment: its first IPv6 neighbour solicitation can go unanswered while its interface comes up),
 * at most 15 s per path. Returns the paths that answer; the others are recorded in `unmeasured`
 * with the reason.
 */
async function reachable(paths: Path[], unmeasured: Record<string, string>): Promise<Path[]> {
  const ok: Path[] = [];
  for (const p of paths) {
    const deadline = Date.now() + 15000;
    for (;;) {
      const r = spawnSync('ip', ['netns', 'exec', p.client, PYTHON, '-c', `import socket; socket.create_connection(('${p.ip}', ${p.echoPort}), 1).close()`], {
        stdio: 'ignore',
      });
      if (r.status === 0) {
        ok.push(p);
        break;
      }
      if (Date.now() > deadline) {
        unmeasured[p.id] = p.ip.includes(':')
          ? `not measured: ${p.ip} port ${p.echoPort} did not answer within 15 s. With 1,000 dual-stack containers the kernel's IPv6 neighbour table, one for every namespace (net.ipv6.neigh.default.gc_thresh3, 1,024 entries by default, settable only in the machine's own namespace, which the benchmark does not touch), overflows, and new neighbours are not resolved: a host that runs that many dual-stack containers needs it raised`
          : `not measured: ${p.ip} port ${p.echoPort} did not answer within 15 s`;
        break;
      }
      await sleep(100);
    }
  }
  return ok;
}

function latency(p: Path, conns: number, rts: number): Omit<Sample, 'gbps'> {
  const r = run('ip', ['netns', 'exec', p.client, PYTHON, '-c', LATENCY_CLIENT, p.ip, String(p.echoPort), String(conns), String(rts)]);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Omit<Sample, 'gbps'>;
}

/** Servers in a namespace: iperf3 on 80, the echo server on 81. */
async function servers(ns: string): Promise<Background[]> {
  return [await startIn(ns, ['iperf3', '-s', '-p', '80']), await startIn(ns, [PYTHON, '-c', ECHO_SERVER, '81'])];
}

/** The external namespace E joined to the host H by a veth. */
function external(h: Host): string {
  const e = `${h.name}ext`;
  run('ip', ['netns', 'add', e]);
  ipBatch(h.name, [
    `link add ext0 type veth peer name eth0 netns ${e}`,
    `addr add ${HOST_IP}/24 dev ext0`,
    `addr add ${HOST_IP6}/64 dev ext0 nodad`,
    'link set ext0 up',
  ]);
  ipBatch(e, ['link set lo up', `addr add ${EXT_IP}/24 dev eth0`, `addr add ${EXT_IP6}/64 dev eth0 nodad`, 'link set eth0 up']);
  return e;
}

/**
 * The overlay row. Overlay mode is being built on another branch. When this build's nsnet
 * exports OverlayAgent (the overlay mode is in), this sets up two host namespaces joined by an
 * underlay veth (198.18.1.1 — 198.18.1.2), a NetworkHost in each opened with a shared directory
 * control plane, one overlay network (VXLAN, VNI 42) and a container on each host, runs the
 * agents, waits until the client container reaches the server container, and returns that path
 * (client on host 1 → server on host 2, across VXLAN). Written against the overlay branch's API
 * (NetworkHost.open({ controlPlane: { dir }, hostId, underlay: { dev } }), createNetwork({ driver:
 * 'overlay', vni }), runAgent()); anything that fails makes the row "not measured" with the reason.
 */
async function overlayPath(log: (m: string) => void): Promise<{ path: Path; stop: () => Promise<void> } | string> {
  const lib = (await import('../lib/index')) as Record<string, unknown>;
  if (!('OverlayAgent' in lib))
    return 'not available yet: this build of nsnet has no overlay mode (no OverlayAgent export; NetworkSpec.driver is bridge | macvlan)';
  const made: string[] = [];
  const hosts: { close(): Promise<void> }[] = [];
  const running: Background[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-overlay-'));
  const stop = async (): Promise<void> => {
    for (const b of running) await b.stop();
    for (const h of hosts) await h.close().catch(() => undefined);
    for (const ns of made.reverse()) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const base = `nsb${process.pid}ov`;
    const [h1, h2, c1, c2] = ['h1', 'h2', 'c1', 'c2'].map((x) => `${base}${x}`) as [string, string, string, string];
    for (const ns of [h1, h2, c1, c2]) {
      run('ip', ['netns', 'add', ns]);
      made.push(ns);
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    ipBatch(h1, [`link add eth0 type veth peer name eth0 netns ${h2}`, 'addr add 198.18.1.1/24 dev eth0', 'link set eth0 up']);
    ipBatch(h2, ['addr add 198.18.1.2/24 dev eth0', 'link set eth0 up']);
    type Opened = {
      createNetwork(s: unknown): Promise<unknown>;
      connect(n: string, o: unknown): Promise<{ ipv4?: string }>;
      runAgent(): unknown;
      close(): Promise<void>;
    };
    const open = NetworkHost.open as unknown as (o: unknown) => Promise<Opened>;
    const nh: Opened[] = [];
    for (const [i, h] of [h1, h2].entries()) {
      const x = await open({
        netns: h,
        stateDir: path.join(dir, `state${i + 1}`),
        controlPlane: { dir: path.join(dir, 'cp'), ttl: 5, pollInterval: 100 },
        hostId: `host${i + 1}`,
        underlay: { dev: 'eth0' },
      });
      hosts.push(x);
      nh.push(x);
    }
    const spec = { name: 'ov', driver: 'overlay', subnet: '10.99.0.0/16', vni: 42 };
    for (const x of nh) await x.createNetwork(spec);
    await nh[0]!.connect('ov', { id: 'c1', netns: netnsFile(c1) });
    const server = await nh[1]!.connect('ov', { id: 'c2', netns: netnsFile(c2) });
    for (const x of nh) x.runAgent();
    const ip = server.ipv4?.split('/')[0];
    if (!ip) throw new Error('the server container got no address');
    running.push(...(await servers(c2)));
    // Until the agents have programmed the peers: the client reaches the server.
    const deadline = Date.now() + 20000;
    for (;;) {
      const r = spawnSync('ip', ['netns', 'exec', c1, PYTHON, '-c', `import socket; socket.create_connection(('${ip}', 81), 1).close()`], { stdio: 'ignore' });
      if (r.status === 0) break;
      if (Date.now() > deadline) throw new Error('the client container never reached the server across the overlay (20 s)');
      await sleep(250);
    }
    log(`  overlay: ${c1} (host 1) → ${ip} (host 2) across VXLAN`);
    return {
      path: {
        id: 'overlay',
        label: 'nsnet overlay: container on host 1 → container on host 2 (VXLAN over a veth underlay)',
        nsnet: true,
        client: c1,
        ip,
        iperfPort: 80,
        echoPort: 81,
      },
      stop,
    };
  } catch (e) {
    await stop();
    return `not measured: the overlay mode is present but its world could not be set up here: ${e instanceof Error ? e.message : String(e)}`;
  }
}

export const dataplaneSuite: Suite = {
  name: 'dataplane',
  title: 'data plane: throughput and latency by path against host mode; the first packet with 10,000 ports published',
  async run(o: SuiteOptions) {
    requirePeers();
    if (!fs.existsSync('/usr/bin/iperf3')) throw new Error('missing iperf3; run  sudo sh scripts/bench-peers.sh  outside the sandbox');
    const log = o.log;
    const reps = Math.max(1, Math.round(3 * o.scale));
    const seconds = o.scale < 1 ? 1 : 3;
    const conns = o.scale < 1 ? 100 : 300;
    const rts = o.scale < 1 ? 500 : 2000;
    const samples: Record<string, Sample[]> = {};
    const paths: Path[] = [];
    const bg: Background[] = [];
    const measure = (list: Path[], r: number): void => {
      for (const p of list) {
        const gbps = iperf(p, seconds);
        const l = latency(p, conns, rts);
        (samples[p.id] ??= []).push({ gbps, ...l });
        log(
          `  ${p.id} rep ${r + 1}: ${gbps.toFixed(2)} Gbit/s, connect median ${stats(l.connect).median.toFixed(0)} µs, round trip ${stats(l.rr).median.toFixed(0)} µs`,
        );
      }
    };
    const rules: Record<string, number> = {};
    const unmeasured: Record<string, string> = {};

    await withHost(
      'nsnet',
      async (h) => {
        const e = external(h);
        try {
          h.containers(S, A);
          await h.driver.connect(S, 2);
          await h.driver.connect(A, 1);
          bg.push(...(await servers(h.name)), ...(await servers(h.cname(S))));
          await sleep(300);
          const ip = run('ip', ['-n', h.cname(S), '-4', '-o', 'addr', 'show', 'dev', 'eth0']).stdout.match(/inet (\S+)\//u)?.[1];
          if (!ip) throw new Error('dataplane: the server container has no address');
          const base: Path[] = [
            { id: 'host', label: "host mode: E → H (one veth hop, the host's own stack)", nsnet: false, client: e, ip: HOST_IP, iperfPort: 80, echoPort: 81 },
            { id: 'nsnet-bridge-c2c', label: 'nsnet bridge, container → container', nsnet: true, client: h.cname(A), ip, iperfPort: 80, echoPort: 81 },
            {
              id: 'nsnet-published',
              label: 'nsnet published port: E → hostIP:port → container',
              nsnet: true,
              client: e,
              ip: HOST_IP,
              iperfPort: hostPort(S, 0),
              echoPort: hostPort(S, 1),
            },
            { id: 'host6', label: 'host mode over IPv6: E → [H]', nsnet: false, client: e, ip: HOST_IP6, iperfPort: 80, echoPort: 81 },
            {
              id: 'nsnet-published6',
              label: 'nsnet published port over IPv6: E → [hostIP]:port → container',
              nsnet: true,
              client: e,
              ip: HOST_IP6,
              iperfPort: hostPort(S, 0),
              echoPort: hostPort(S, 1),
            },
          ];
          const ready = await reachable(base, unmeasured);
          paths.push(...ready);
          for (let r = 0; r < reps; r++) measure(ready, r);
          rules['nsnet-published'] = h.driver.rules().rules;
          // 10,000 other ports: 1,000 containers × 10, for real; then S again, last.
          log(`  nsnet: connecting ${OTHERS} containers × ${PORT_SLOTS} ports`);
          h.containers(1, OTHERS);
          await sleep(500);
          for (let s = 1; s <= OTHERS; s++) await h.driver.connect(s, PORT_SLOTS);
          for (const b of bg.splice(2)) await b.stop();
          await h.driver.disconnect(S);
          await h.driver.connect(S, 2);
          bg.push(...(await servers(h.cname(S))));
          await sleep(300);
          rules['nsnet-published-10k'] = h.driver.rules().rules;
          const ten: Path = {
            id: 'nsnet-published-10k',
            label: 'nsnet published port, 10,000 other ports published',
            nsnet: true,
            client: e,
            ip: HOST_IP,
            iperfPort: hostPort(S, 0),
            echoPort: hostPort(S, 1),
          };
          const ten6: Path = {
            id: 'nsnet-published6-10k',
            label: 'nsnet published port over IPv6, 10,000 other ports of each family published',
            nsnet: true,
            client: e,
            ip: HOST_IP6,
            iperfPort: hostPort(S, 0),
            echoPort: hostPort(S, 1),
          };
          const ready10k = await reachable([ten, ten6], unmeasured);
          paths.push(...ready10k);
          for (let r = 0; r < reps; r++)
            measure(
              ready10k.flatMap((p) => [p, base[p === ten ? 0 : 3]!]),
              r,
            );
        } finally {
          for (const b of bg.splice(0)) await b.stop();
          run('ip', ['netns', 'del', e]);
        }
      },
      'both',
    );

    // CNI: the server container alone, then (in a fresh host) after 1,000 containers × 10 ports,
    // added last. Two hosts, because host-local hands out addresses in order and the replay's
    // template is containers 1 and 2 at the first two addresses.
    // The replay on a dual-stack network (iptables and ip6tables), proved against real ADDs first.
    const proof: ReplayProof = await proveReplay('cni', 4, PORT_SLOTS, 'both');
    log(
      `  replay proof cni, both families (4 containers × ${PORT_SLOTS} ports): rules ${proof.rules_equal ? 'identical' : 'DIFFERENT'}, files ${proof.files_equal ? 'identical' : 'DIFFERENT'}`,
    );
    const cniWorld = async (id: string, label: string, others: boolean): Promise<void> =>
      withHost(
        'cni',
        async (h) => {
          const e = external(h);
          try {
            if (others) {
              log(`  cni: replaying ${OTHERS} containers × ${PORT_SLOTS} ports`);
              await h.replay!.start(h, PORT_SLOTS);
              h.replay!.apply(3, OTHERS);
            }
            h.containers(S, S);
            await h.driver.connect(S, 2);
            bg.push(...(await servers(h.cname(S))));
            await sleep(300);
            rules[id] = h.driver.rules().rules;
            const p: Path = { id, label, nsnet: false, client: e, ip: HOST_IP, iperfPort: hostPort(S, 0), echoPort: hostPort(S, 1) };
            const id6 = id.replace('published', 'published6');
            const p6: Path = {
              id: id6,
              label: `${label}, over IPv6`,
              nsnet: false,
              client: e,
              ip: HOST_IP6,
              iperfPort: hostPort(S, 0),
              echoPort: hostPort(S, 1),
            };
            const ready = await reachable([p, p6], unmeasured);
            paths.push(...ready);
            for (let r = 0; r < reps; r++) measure(ready, r);
          } finally {
            for (const b of bg.splice(0)) await b.stop();
            run('ip', ['netns', 'del', e]);
          }
        },
        'both',
      );
    await cniWorld('cni-published', 'CNI portmap published port: E → hostIP:port → container', false);
    await cniWorld('cni-published-10k', 'CNI portmap published port, 10,000 other ports published (its rule last)', true);

    const overlay = await overlayPath(log);
    const overlayNote = typeof overlay === 'string' ? overlay : undefined;
    if (typeof overlay !== 'string') {
      try {
        paths.push(overlay.path);
        for (let r = 0; r < reps; r++) measure([overlay.path], r);
      } finally {
        await overlay.stop();
      }
    }

    const rowsOf = (pick: (s: Sample) => number[], unitNote: string): SummaryRow[] =>
      paths.map((p) => {
        const groups = samples[p.id]!.map(pick);
        return { tool: p.id, label: p.label, nsnet: p.nsnet, items: 1, samples: groups.flat(), groups, timing: unitNote };
      });
    const v = (unit: string, higher: boolean) => ({ unit, higher_is_better: higher });
    const overlayText = overlayNote ? ` Overlay: ${overlayNote}.` : '';
    const workloads: WorkloadResult[] = [
      {
        id: 'throughput',
        bars: true,
        title: 'TCP throughput (iperf3, one stream)',
        unit: 'stream',
        reference: 'host',
        value: v('Gbit/s', true),
        note: `iperf3 -t ${seconds}, received bits per second; ${reps} repetitions per path, paths taking turns. Host mode (the reference) is a client in E talking to a server in H: one veth hop, no bridge, no NAT.${overlayText}`,
        tools: summarize(
          rowsOf((s) => [s.gbps], 'iperf3'),
          'host',
          v('Gbit/s', true),
        ),
      },
      {
        id: 'connect',
        bars: true,
        title: 'first packet: TCP connect() time (SYN → SYN/ACK)',
        unit: 'connection',
        reference: 'host',
        value: v('µs', false),
        note: `${conns} connections per repetition from a python client; on the published paths the SYN is the packet that goes through the DNAT lookup (nsnet: one map lookup; CNI: the CNI-HOSTPORT-DNAT chain, one rule per container, its rule last). Rules in the host namespace: ${Object.entries(
          rules,
        )
          .map(([k, n]) => `${k} ${n.toLocaleString('en-US')}`)
          .join(', ')}.`,
        tools: summarize(
          rowsOf((s) => s.connect, 'python client, in process'),
          'host',
          v('µs', false),
        ),
      },
      {
        id: 'transaction',
        title: 'short connection: connect + 1-byte request/response + close',
        unit: 'connection',
        reference: 'host',
        value: v('µs', false),
        note: 'What a client opening a connection per request pays (TCP_CRR-like).',
        tools: summarize(
          rowsOf((s) => s.txn, 'python client, in process'),
          'host',
          v('µs', false),
        ),
      },
      {
        id: 'round-trip',
        bars: true,
        title: 'request/response round trip on an open connection (1 byte)',
        unit: 'round trip',
        reference: 'host',
        value: v('µs', false),
        note: `${rts} round trips per repetition after 50 warm-up ones (TCP_RR-like; conntrack has the flow, no rule lookup).`,
        tools: summarize(
          rowsOf((s) => s.rr, 'python client, in process'),
          'host',
          v('µs', false),
        ),
      },
    ];
    const m = (id: string, pick: (s: Sample) => number[]): number => (samples[id] ? stats(samples[id]!.flatMap(pick)).median : NaN);
    const charts: Chart[] = [
      {
        id: 'first-packet',
        title: 'first packet through a published port against other ports published (nsnet: a map lookup; CNI portmap: a rule chain)',
        x_label: "other published ports of the family (0 = only this container's)",
        y_label: 'µs, connect() median (whisker p95)',
        log_x: false,
        series: (['nsnet', 'cni'] as ToolId[]).flatMap((t) =>
          (['', '6'] as const).map((six) => ({
            name: `${t}${six ? ' IPv6' : ''}`,
            nsnet: t === 'nsnet',
            points: [`${t}-published${six}`, `${t}-published${six}-10k`]
              .filter((id) => samples[id])
              .map((id) => {
                const i = id.endsWith('-10k') ? 1 : 0;
                const s = samples[id]!.flatMap((x) => x.connect);
                return { x: i === 0 ? 0 : OTHERS * PORT_SLOTS, y: round(stats(s).median, 1), p95: round(stats(s).p95, 1) };
              }),
          })),
        ),
      },
    ];

    const host = m('host', (s) => [s.gbps]);
    const host6 = m('host6', (s) => [s.gbps]);
    const ratio = (id: string): number => m(id, (s) => [s.gbps]) / (id.includes('published6') ? host6 : host);
    const targets: TargetResult[] = [
      {
        id: 'bridge-throughput',
        text: 'bridge (container → container) throughput ≥ 0.9× host mode',
        met: ratio('nsnet-bridge-c2c') >= 0.9,
        detail: `${m('nsnet-bridge-c2c', (s) => [s.gbps]).toFixed(2)} vs ${host.toFixed(2)} Gbit/s = ${ratio('nsnet-bridge-c2c').toFixed(2)}×`,
      },
      {
        id: 'published-throughput',
        text: 'published-port throughput ≥ 0.9× host mode',
        met: ratio('nsnet-published') >= 0.9 && ratio('nsnet-published-10k') >= 0.9,
        detail: `${m('nsnet-published', (s) => [s.gbps]).toFixed(2)} Gbit/s = ${ratio('nsnet-published').toFixed(2)}×; with 10,000 other ports ${m('nsnet-published-10k', (s) => [s.gbps]).toFixed(2)} Gbit/s = ${ratio('nsnet-published-10k').toFixed(2)}× (CNI portmap: ${ratio('cni-published').toFixed(2)}× / ${ratio('cni-published-10k').toFixed(2)}×)`,
      },
      {
        id: 'published6-throughput',
        text: 'IPv6 published-port throughput ≥ 0.9× host mode over IPv6',
        met: ratio('nsnet-published6') >= 0.9 && (unmeasured['nsnet-published6-10k'] !== undefined || ratio('nsnet-published6-10k') >= 0.9),
        detail: `${m('nsnet-published6', (s) => [s.gbps]).toFixed(2)} vs ${host6.toFixed(2)} Gbit/s = ${ratio('nsnet-published6').toFixed(2)}×; with 10,000 other ports of each family ${unmeasured['nsnet-published6-10k'] !== undefined ? `${unmeasured['nsnet-published6-10k']}` : `${m('nsnet-published6-10k', (s) => [s.gbps]).toFixed(2)} Gbit/s = ${ratio('nsnet-published6-10k').toFixed(2)}×`} (CNI portmap: ${ratio('cni-published6').toFixed(2)}× / ${ratio('cni-published6-10k').toFixed(2)}×)`,
      },
      overlayNote
        ? { id: 'overlay-throughput', text: 'overlay throughput ≥ 0.5× host mode', met: false, status: 'not measured', detail: overlayNote }
        : { id: 'overlay-throughput', text: 'overlay throughput ≥ 0.5× host mode', met: ratio('overlay') >= 0.5, detail: `${ratio('overlay').toFixed(2)}×` },
    ];
    const c = (id: string): number => m(id, (s) => s.connect);
    const notes = [
      `First packet with 10,000 other ports published: nsnet connect() ${c('nsnet-published').toFixed(0)} → ${c('nsnet-published-10k').toFixed(0)} µs (${(c('nsnet-published-10k') / c('nsnet-published')).toFixed(2)}×); ` +
        `CNI portmap ${c('cni-published').toFixed(0)} → ${c('cni-published-10k').toFixed(0)} µs (${(c('cni-published-10k') / c('cni-published')).toFixed(2)}×); host mode ${c('host').toFixed(0)} µs. ` +
        'The round trip on an open connection does not look anything up again (conntrack has the flow), so it stays flat for both.',
      `Over IPv6: nsnet connect() ${c('nsnet-published6').toFixed(0)} → ${c('nsnet-published6-10k').toFixed(0)} µs; CNI portmap ${c('cni-published6').toFixed(0)} → ${c('cni-published6-10k').toFixed(0)} µs; host mode ${c('host6').toFixed(0)} µs. ` +
        'The networks are dual-stack and ports are published on both families (the IPv4 paths are the same as on an IPv4-only network: IPv4 lookups do not see IPv6 elements).',
      ...Object.entries(unmeasured).map(([id, why]) => `${id}: ${why}.`),
      `The CNI replay on a dual-stack network (iptables and ip6tables) against real ADDs of 4 containers × ${PORT_SLOTS} ports: ${proof.rules_equal && proof.files_equal ? 'identical' : `DIFFERENT: ${(proof.difference ?? []).join('; ')}`}.`,
    ];
    return {
      workloads,
      targets,
      charts,
      notes,
      rules,
      unmeasured,
      replay_proof: proof,
      iperf3: version('iperf3', ['--version']),
      overlay: overlayNote ?? 'measured',
    };
  },
};

export type { Path };
