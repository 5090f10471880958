/**
 * Suite "daemon": no daemon to start by hand. What a runtime pays when nothing runs beforehand,
 * and what the daemon then costs in memory.
 *
 * ADD with no daemon (3 rounds, the tools taking turns, each round a fresh host namespace):
 *   nsnet-cni  the plugin as `nsnet cni install` puts it in a CNI plugin directory (a launcher
 *              script that execs the native client), run under `ip netns exec HOST` with the
 *              CNI_* variables and the configuration on stdin, containers 1..15 added one after
 *              the other. No daemon runs before the first: the first client starts it (that ADD
 *              is the cold one), the others find it. NSNET_CNI_MAIN names no script, so a client
 *              that ran the plugin in node instead would fail: every ADD is proven served by
 *              the daemon, and the suite checks that exactly one daemon was started per round.
 *   netavark   `netavark setup` of containers 1..15 in a fresh host (its first also creates the
 *              bridge and its chains), NETAVARK_FW=iptables, one published port each, as in
 *              suite cni.
 * Target (issue 18): the median of the 15 sequential nsnet-cni ADDs is no slower than netavark's
 * setup, in the same run; the cold ADD is reported.
 *
 * The daemon's memory: VmRSS of the daemon a client started (/proc/<pid>/status, as an operator
 * sees it: nothing is forced from outside), right after it served a VERSION request, idle after
 * one ADD and DEL (its NetworkHost open, the network made), and with 1,000 endpoints (bridge,
 * one published port each, added through the plugin 4 at a time) — right after the last ADD,
 * and 5 s later (the daemon collects its garbage after 2 s without a request). Target: ≤ 64 MiB
 * with 1,000 endpoints.
 *
 *   node scripts/sandbox.js -- node dist/bench/run.js daemon [--quick]
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  ROOT,
  flushLinks,
  globalBatch,
  round,
  run,
  sleep,
  stats,
  succeeds,
  summarize,
  withNetns,
  type Suite,
  type SuiteOptions,
  type TargetResult,
  type WorkloadResult,
} from './common';

const SUBNET = '10.89.0.0/16';
const GATEWAY = '10.89.0.1';
const SEQUENCE = 15;
const MEMORY_ENDPOINTS = 1000;
const CNI_PATH = '/usr/lib/cni';
const NETAVARK = '/usr/lib/podman/netavark';
const NETWORK = 'bench';
const ENV_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const MiB = 2 ** 20;

const hex64 = (s: string): string => Buffer.from(s).toString('hex').padStart(64, '0').slice(-64);
const hostPort = (serial: number): number => 20000 + serial;
const addressOf = (serial: number): string => `10.89.${((serial + 1) >> 8) & 255}.${(serial + 1) & 255}`;
const median = (s: number[]): number => stats(s).median;

/** The plugin as a user installs it: `nsnet cni install --bin-dir DIR`. */
function installPlugin(): { bin: string; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-cnibin-'));
  run(process.execPath, [path.join(ROOT, 'bin', 'nsnet'), 'cni', 'install', '--bin-dir', dir]);
  return { bin: path.join(dir, 'nsnet-cni'), dir };
}

/** The live daemon processes serving `socket` (/proc: command line and state). */
function daemonsOf(socket: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/u.test(d)) continue;
    try {
      const args = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (!args.some((a) => a.endsWith('daemon.js')) || !args.includes(socket)) continue;
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (/^[ZX]/u.test(stat.slice(stat.lastIndexOf(')') + 2))) continue;
      out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Stops the daemons of `socket` and waits until they are gone. */
async function stopDaemons(socket: string): Promise<void> {
  for (const pid of daemonsOf(socket)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  for (let i = 0; i < 200 && daemonsOf(socket).length; i++) await sleep(50);
  fs.rmSync(path.dirname(socket), { recursive: true, force: true });
}

function status(pid: number): { rss: number; threads: number; fds: number } {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'mu').exec(s)?.[1] ?? 0);
  return { rss: kb('VmRSS') * 1024, threads: kb('Threads'), fds: fs.readdirSync(`/proc/${pid}/fd`).length };
}

interface Plugin {
  bin: string;
  socket: string;
  stateDir: string;
  host: string;
}

const conf = (p: Plugin, serial: number): Record<string, unknown> => ({
  cniVersion: '1.0.0',
  name: NETWORK,
  type: 'nsnet-cni',
  subnet: SUBNET,
  stateDir: p.stateDir,
  capabilities: { portMappings: true },
  runtimeConfig: { portMappings: [{ hostPort: hostPort(serial), containerPort: 80, protocol: 'tcp' }] },
});

function pluginEnv(p: Plugin, command: string, serial: number, netns: string): NodeJS.ProcessEnv {
  return {
    PATH: ENV_PATH,
    CNI_COMMAND: command,
    CNI_CONTAINERID: hex64(`c${serial}`),
    CNI_NETNS: `/var/run/netns/${netns}`,
    CNI_IFNAME: 'eth0',
    CNI_PATH: `${path.dirname(p.bin)}:${CNI_PATH}`,
    NSNET_CNI_SOCKET: p.socket,
    NSNET_CNI_IDLE_EXIT: '600',
    // No fallback: an ADD the daemon did not serve fails the suite.
    NSNET_CNI_MAIN: '/nonexistent/nsnet-cni-main.js',
  };
}

/** One ADD or DEL through the plugin, as a whole process under ip netns exec; its ms. */
function cniSync(p: Plugin, command: string, serial: number, netns: string): number {
  const r = run('ip', ['netns', 'exec', p.host, p.bin], { input: JSON.stringify(conf(p, serial)), env: pluginEnv(p, command, serial, netns) });
  if (command === 'ADD' && !/"ips"/u.test(r.stdout)) throw new Error(`nsnet-cni ADD ${serial}: ${r.stdout}`);
  return r.ms;
}

/** The same, not waited for (the memory fill runs several at once). */
function cniAsync(p: Plugin, command: string, serial: number, netns: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('ip', ['netns', 'exec', p.host, p.bin], { env: pluginEnv(p, command, serial, netns), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => {
      out += d;
    });
    c.stderr.on('data', (d) => {
      out += d;
    });
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`nsnet-cni ${command} ${serial} exited ${code}: ${out}`))));
    c.stdin.end(JSON.stringify(conf(p, serial)));
  });
}

function hasAddress(ns: string): boolean {
  return /inet 10\.89\.\d+\.\d+\/16 /u.test(run('ip', ['-n', ns, '-4', '-o', 'addr', 'show', 'dev', 'eth0']).stdout);
}

let roundNo = 0;
const socketFor = (): string => `/run/nsb${process.pid}r${++roundNo}/cni.sock`;

/** Containers 1..15 added through nsnet-cni with no daemon running before the first. */
async function nsnetRound(bin: string): Promise<{ add: number[]; daemons: number }> {
  const socket = socketFor();
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-daemon-'));
  let containers: string[] = [];
  try {
    return await withNetns(
      async (host) => {
        containers = Array.from({ length: SEQUENCE }, (_, i) => `${host}c${i + 1}`);
        globalBatch(containers.map((c) => `netns add ${c}`));
        await sleep(200);
        if (daemonsOf(socket).length || fs.existsSync(socket)) throw new Error('a daemon runs before the first ADD');
        const p: Plugin = { bin, socket, stateDir, host };
        const add = containers.map((c, i) => cniSync(p, 'ADD', i + 1, c));
        for (const c of containers) if (!hasAddress(c)) throw new Error(`nsnet-cni: ${c} has no address`);
        const daemons = daemonsOf(socket).length;
        for (let i = containers.length - 1; i >= 0; i--) cniSync(p, 'DEL', i + 1, containers[i]!);
        await stopDaemons(socket);
        return { add, daemons };
      },
      (host) => {
        flushLinks(host);
        globalBatch(containers.map((c) => `netns del ${c}`));
      },
    );
  } finally {
    await stopDaemons(socket);
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

/** Containers 1..15 set up by netavark in a fresh host (the first also makes its bridge). */
async function netavarkRound(): Promise<{ add: number[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-netavark-'));
  let containers: string[] = [];
  try {
    return await withNetns(
      async (host) => {
        containers = Array.from({ length: SEQUENCE }, (_, i) => `${host}c${i + 1}`);
        globalBatch(containers.map((c) => `netns add ${c}`));
        await sleep(200);
        const options = (s: number): string =>
          JSON.stringify({
            container_id: hex64(`c${s}`),
            container_name: `c${s}`,
            networks: { [NETWORK]: { static_ips: [addressOf(s)], interface_name: 'eth0' } },
            network_info: {
              [NETWORK]: {
                driver: 'bridge',
                id: hex64('nsnet-bench-network'),
                name: NETWORK,
                network_interface: 'nvbr0',
                subnets: [{ subnet: SUBNET, gateway: GATEWAY }],
                internal: false,
                ipv6_enabled: false,
                dns_enabled: false,
              },
            },
            port_mappings: [{ host_ip: '', container_port: 80, host_port: hostPort(s), range: 1, protocol: 'tcp' }],
          });
        const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:${ENV_PATH}`, NETAVARK_FW: 'iptables' };
        const add = containers.map(
          (c, i) => run('ip', ['netns', 'exec', host, NETAVARK, '--config', dir, 'setup', `/var/run/netns/${c}`], { input: options(i + 1), env }).ms,
        );
        for (const c of containers) if (!hasAddress(c)) throw new Error(`netavark: ${c} has no address`);
        for (let i = containers.length - 1; i >= 0; i--)
          run('ip', ['netns', 'exec', host, NETAVARK, '--config', dir, 'teardown', `/var/run/netns/${containers[i]}`], { input: options(i + 1), env });
        return { add };
      },
      (host) => {
        flushLinks(host);
        globalBatch(containers.map((c) => `netns del ${c}`));
      },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

interface MemoryReading {
  started: number;
  idle: number;
  busy: number;
  full: number;
  threads: [number, number];
  fds: [number, number];
}

/** The daemon a client started: RSS after VERSION, after one ADD + DEL, with 1,000 endpoints. */
async function memoryRound(bin: string, log: (m: string) => void): Promise<MemoryReading> {
  const socket = socketFor();
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-daemon-mem-'));
  let containers: string[] = [];
  try {
    return await withNetns(
      async (host) => {
        containers = Array.from({ length: MEMORY_ENDPOINTS + 1 }, (_, i) => `${host}m${i}`);
        globalBatch(containers.map((c) => `netns add ${c}`));
        await sleep(500);
        const p: Plugin = { bin, socket, stateDir, host };
        run('ip', ['netns', 'exec', host, bin], { input: '{"cniVersion":"1.0.0"}', env: { ...pluginEnv(p, 'VERSION', 0, containers[0]!) } });
        const [pid] = daemonsOf(socket);
        if (pid === undefined) throw new Error('no daemon was started');
        await sleep(1000);
        const started = status(pid);
        cniSync(p, 'ADD', MEMORY_ENDPOINTS + 1, containers[0]!);
        cniSync(p, 'DEL', MEMORY_ENDPOINTS + 1, containers[0]!);
        await sleep(5000);
        const idle = status(pid);
        let next = 1;
        const worker = async (): Promise<void> => {
          while (next <= MEMORY_ENDPOINTS) {
            const s = next++;
            await cniAsync(p, 'ADD', s, containers[s]!);
          }
        };
        const t0 = Date.now();
        await Promise.all([worker(), worker(), worker(), worker()]);
        log(`    ${MEMORY_ENDPOINTS} ADDs through the daemon (4 at a time): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        if (!hasAddress(containers[MEMORY_ENDPOINTS]!)) throw new Error('the last container has no address');
        if (daemonsOf(socket).join() !== String(pid)) throw new Error('the daemon changed during the fill');
        const busy = status(pid);
        // The daemon collects its garbage after 2 s without a request; read it once that is done.
        await sleep(5000);
        const full = status(pid);
        return { started: started.rss, idle: idle.rss, busy: busy.rss, full: full.rss, threads: [idle.threads, full.threads], fds: [idle.fds, full.fds] };
      },
      (host) => {
        flushLinks(host);
        globalBatch(containers.map((c) => `netns del ${c}`));
      },
    );
  } finally {
    await stopDaemons(socket);
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

export const daemonSuite: Suite = {
  name: 'daemon',
  title: "no daemon to start by hand: ADDs with no daemon running vs netavark; the daemon's memory",
  async run(o: SuiteOptions) {
    const missing = [...(fs.existsSync(NETAVARK) ? [] : [`${NETAVARK} (netavark)`]), ...(succeeds('iptables-save', ['--version']) ? [] : ['iptables-save'])];
    if (missing.length) throw new Error(`daemon suite: missing ${missing.join(', ')}`);
    const plugin = installPlugin();
    try {
      const exec: number[] = [];
      await withNetns((host) => {
        for (let i = 0; i < 11; i++) exec.push(run('ip', ['netns', 'exec', host, '/bin/true']).ms);
      });
      o.log(`  ip netns exec HOST /bin/true: ${median(exec).toFixed(1)} ms`);

      const rounds = Math.max(1, Math.round(3 * o.scale));
      const nsnet: number[][] = [];
      const netavark: number[][] = [];
      for (let r = 0; r < rounds; r++) {
        const a = await nsnetRound(plugin.bin);
        if (a.daemons !== 1) throw new Error(`round ${r + 1}: ${a.daemons} daemons were running after the ADDs, expected 1`);
        nsnet.push(a.add);
        o.log(
          `  round ${r + 1}/${rounds} nsnet-cni: cold ADD ${a.add[0]!.toFixed(1)} ms, median of ${SEQUENCE} ${median(a.add).toFixed(1)} ms (one daemon started)`,
        );
        const b = await netavarkRound();
        netavark.push(b.add);
        o.log(`  round ${r + 1}/${rounds} netavark: first setup ${b.add[0]!.toFixed(1)} ms, median of ${SEQUENCE} ${median(b.add).toFixed(1)} ms`);
      }

      const memRounds = Math.max(1, Math.round(2 * o.scale));
      const mem: MemoryReading[] = [];
      for (let r = 0; r < memRounds; r++) {
        const m = await memoryRound(plugin.bin, o.log);
        mem.push(m);
        o.log(
          `  memory ${r + 1}/${memRounds}: started ${(m.started / MiB).toFixed(1)} MiB, idle ${(m.idle / MiB).toFixed(1)} MiB, ${MEMORY_ENDPOINTS} endpoints ${(m.full / MiB).toFixed(1)} MiB`,
        );
      }

      const all = (x: number[][]): number[] => x.flat();
      const firsts = (x: number[][]): number[] => x.map((r) => r[0]!);
      const workloads: WorkloadResult[] = [
        {
          id: 'add-no-daemon',
          title: `${SEQUENCE} sequential ADDs with no daemon running before the first`,
          unit: 'container',
          reference: 'netavark',
          note:
            `${rounds} rounds, each a fresh host namespace; the tools take turns. Whole processes under \`ip netns exec HOST\` (${median(exec).toFixed(1)} ms for /bin/true). ` +
            'nsnet-cni is the launcher `nsnet cni install` wrote; its first ADD starts the daemon. vs ref above 1.00 is faster than netavark.',
          tools: summarize(
            [
              {
                tool: 'nsnet-cni',
                label: `nsnet-cni ADD, containers 1–${SEQUENCE} (the first starts the daemon)`,
                items: 1,
                samples: all(nsnet),
                groups: nsnet,
                timing: 'whole process',
              },
              {
                tool: 'nsnet-cni-cold',
                label: 'nsnet-cni: the cold ADD (no daemon yet: it starts one and waits for it)',
                items: 1,
                samples: firsts(nsnet),
                timing: 'whole process',
              },
              {
                tool: 'netavark',
                label: `netavark setup, containers 1–${SEQUENCE} (NETAVARK_FW=iptables)`,
                items: 1,
                samples: all(netavark),
                groups: netavark,
                timing: 'whole process',
              },
              {
                tool: 'netavark-first',
                label: 'netavark: the first setup of a host (it makes the bridge and its chains)',
                items: 1,
                samples: firsts(netavark),
                timing: 'whole process',
              },
            ],
            'netavark',
          ),
        },
        {
          id: 'daemon-rss',
          bars: true,
          title: "the daemon's resident memory (VmRSS, no forced GC)",
          unit: 'process',
          reference: 'daemon-idle',
          value: { unit: 'MiB', higher_is_better: false },
          note: `${memRounds} repetitions, each a daemon started by a client in a fresh host namespace; ${MEMORY_ENDPOINTS.toLocaleString('en-US')} endpoints added through the plugin, 4 at a time (bridge, one published port each).`,
          tools: summarize(
            [
              {
                tool: 'daemon-started',
                label: 'after starting (one VERSION served)',
                nsnet: true,
                items: 1,
                samples: mem.map((m) => m.started / MiB),
                timing: 'VmRSS',
              },
              {
                tool: 'daemon-idle',
                label: 'idle: after one ADD and DEL (NetworkHost open, network made)',
                nsnet: true,
                items: 1,
                samples: mem.map((m) => m.idle / MiB),
                timing: 'VmRSS',
              },
              {
                tool: 'daemon-1000',
                label: `with ${MEMORY_ENDPOINTS.toLocaleString('en-US')} endpoints (5 s after the last request)`,
                nsnet: true,
                items: 1,
                samples: mem.map((m) => m.full / MiB),
                timing: 'VmRSS',
              },
              {
                tool: 'daemon-1000-busy',
                label: `with ${MEMORY_ENDPOINTS.toLocaleString('en-US')} endpoints, right after the last ADD (before its idle collection)`,
                nsnet: true,
                items: 1,
                samples: mem.map((m) => m.busy / MiB),
                timing: 'VmRSS',
              },
            ],
            'daemon-idle',
            { unit: 'MiB', higher_is_better: false },
          ),
        },
      ];
      const nsMed = median(all(nsnet));
      const navMed = median(all(netavark));
      const fullMiB = median(mem.map((m) => m.full / MiB));
      const targets: TargetResult[] = [
        {
          id: 'add-no-daemon-vs-netavark',
          text: `the median of ${SEQUENCE} sequential nsnet-cni ADDs with no daemon running beforehand is no slower than netavark's setup`,
          met: nsMed <= navMed,
          detail:
            `median ${nsMed.toFixed(1)} ms vs netavark ${navMed.toFixed(1)} ms (${(navMed / nsMed).toFixed(2)}× faster); the cold ADD (it starts the daemon) ${median(firsts(nsnet)).toFixed(1)} ms ` +
            `(netavark's first setup of a host ${median(firsts(netavark)).toFixed(1)} ms); one daemon started per round, every ADD served by it`,
        },
        {
          id: 'daemon-rss-1000',
          text: `the daemon's resident memory with ${MEMORY_ENDPOINTS.toLocaleString('en-US')} endpoints is ≤ 64 MiB`,
          met: fullMiB <= 64,
          detail:
            `${fullMiB.toFixed(1)} MiB 5 s after the last request (${median(mem.map((m) => m.busy / MiB)).toFixed(1)} MiB right after it, before the daemon's idle collection; ` +
            `idle ${median(mem.map((m) => m.idle / MiB)).toFixed(1)} MiB, just started ${median(mem.map((m) => m.started / MiB)).toFixed(1)} MiB); ` +
            `threads ${mem[0]!.threads.join(' → ')}, open fds ${mem[0]!.fds.join(' → ')}`,
        },
      ];
      return { workloads, targets, floors_ms: { ip_netns_exec_true: round(median(exec), 3) }, memory_readings: mem };
    } finally {
      fs.rmSync(plugin.dir, { recursive: true, force: true });
    }
  },
};
