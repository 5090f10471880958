/**
 * A world for a real container runtime (podman now, dockerd next): private pid + net + mount
 * namespaces of its own, nested inside the test run's sandbox, so that whatever the runtime
 * starts (conmon, containers, daemons) and whatever it writes outside its configured
 * directories stays in there and goes away with it.
 *
 * What the runtime sees:
 * - a "host" network namespace with loopback and an uplink `up0` (10.99.0.1/24) to an external
 *   peer, the named namespace `ext` (eth0, 10.99.0.2/24), which serves `/cgi-bin/who` on port
 *   80 (answers "ext <client address>");
 * - a private /run (named namespaces, runtime state, the nsnet-cni daemon socket);
 * - /var/lib as an overlay whose writes land in a tmpfs (libcni's cache /var/lib/cni,
 *   host-local's leases, anything else a runtime writes there by default);
 * - a sysfs of its own, cgroup2 read-only (the runtime is told not to create cgroups); or, with
 *   `cgroups` (dockerd, whose runc cannot run without them), a cgroup namespace with the host's
 *   hierarchies mounted writable: the runtime is told to put its cgroups under one parent
 *   named after the sandbox ({@link RuntimeSandbox.cgroupParent}), removed at teardown;
 * - any directory the runtime's driver binds over a system one (`binds`: e.g. a private
 *   /etc/containers), so the runtime and every process it spawns read the test's
 *   configuration from the standard places.
 *
 * PID 1 is a tiny reaper (python3): runtimes double-fork (conmon) and wait for processes that
 * only a reaping init collects. Teardown (registered when the sandbox starts, so it runs even
 * when the test fails) signals PID 1: the kernel kills everything in the pid namespace, the
 * namespaces and mounts vanish, and the working directory is removed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertInSandbox, registerCleanup } from './sandbox';

/** The uplink's addresses (the "host" and the external peer). */
export const HOST_IP = '10.99.0.1';
export const EXT_IP = '10.99.0.2';
/** The applets linked into the busybox rootfs. */
const APPLETS = ['sh', 'httpd', 'timeout', 'printf', 'ip', 'sleep', 'cat', 'echo', 'ls', 'hostname', 'true', 'sysctl', 'nc', 'ps', 'kill'];

/** What `who` answers: its hostname and the client's address (IPv4-mapped addresses unwrapped), one line. */
const WHO_CGI = `#!/bin/sh
a=\${REMOTE_ADDR#[}; a=\${a%]}; a=\${a#::ffff:}
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo "$(hostname) $a"
`;

/**
 * A shell command printing the reply to an HTTP GET of `url`, by busybox nc (busybox wget
 * crashes in Debian's busybox-static 1.35); {@link httpBody} takes the body out of it.
 */
export function httpGetScript(url: string, timeoutS = 3, busybox = ''): string {
  const u = new URL(url);
  // nc -w bounds the connect, not a peer that accepts and never answers: timeout bounds that.
  return `printf 'GET ${u.pathname} HTTP/1.0\\r\\nHost: ${u.hostname}\\r\\n\\r\\n' | ${busybox}timeout ${timeoutS} ${busybox}nc -w ${timeoutS} ${u.hostname} ${u.port || '80'}`;
}

/** The body of an HTTP reply ('' when there is no complete reply). */
export function httpBody(reply: string): string {
  const at = reply.indexOf('\r\n\r\n');
  return at < 0 || !reply.startsWith('HTTP/') ? '' : reply.slice(at + 4).trim();
}

/** PID 1: reaps every process handed to it; leaves on SIGTERM (the kernel then kills the rest). */
const REAPER = `
import os, signal
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD, signal.SIGTERM])
while True:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0: pass
    except ChildProcessError: pass
    s = signal.sigtimedwait([signal.SIGCHLD, signal.SIGTERM], 5)
    if s is not None and s.si_signo == signal.SIGTERM: os._exit(0)
`;

/** The namespace's setup, run by bash as PID 1 before it becomes the reaper. $1: the work dir; then pairs SRC DST to bind. */
const INIT = `
set -eu
D=$1; shift
mount -t tmpfs -o mode=0755 rt-run /run
mkdir -p /run/netns /run/lock
[ "$(readlink -f /var/run)" = /run ] || mount -t tmpfs -o mode=0755 rt-varrun /var/run
mkdir -p /var/run/netns
mount -t tmpfs -o mode=0700 rt-ovl "$D/ovl"
mkdir -p "$D/ovl/up" "$D/ovl/work"
mount -t overlay -o "lowerdir=/var/lib,upperdir=$D/ovl/up,workdir=$D/ovl/work" rt-varlib /var/lib
while [ $# -ge 2 ]; do mount --bind "$1" "$2"; shift 2; done
mount -t sysfs rt-sys /sys
if [ -n "\${CGROUPS:-}" ]; then eval "$CGROUP_MOUNTS"; else mount -t cgroup2 -o ro rt-cgroup /sys/fs/cgroup 2>/dev/null || true; fi
ip link set lo up
ip netns add ext
ip link add up0 type veth peer name eth0 netns ext
ip addr add ${HOST_IP}/24 dev up0
ip link set up0 up
ip -n ext addr add ${EXT_IP}/24 dev eth0
ip -n ext link set eth0 up
ip -n ext link set lo up
ip netns exec ext busybox httpd -p 80 -h "$D/ext-www"
echo ready
exec /usr/bin/python3 -c "$REAPER"
`;

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  env?: Record<string, string>;
  input?: string;
  /** Default 60 s: the command (and nsenter) is killed after it. */
  timeoutMs?: number;
}

export interface RuntimeSandboxOptions {
  /** A short tag for the working directory's name. */
  prefix: string;
  /** A cgroup namespace with writable hierarchies (see the file's comment). */
  cgroups?: boolean;
  /**
   * Directories to bind over system ones, `[relative to the work dir, absolute target]`; the
   * source is created (empty) when missing, the target must exist.
   */
  binds?: [string, string][];
}

/** Tools a runtime sandbox needs (besides the runtime): a reason to skip when one is missing. */
export function missingTools(extra: string[] = []): string | undefined {
  for (const tool of ['unshare', 'nsenter', 'busybox', '/usr/bin/python3', ...extra]) {
    const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
    if (r.status !== 0) return `${tool} is not installed`;
  }
  return undefined;
}

export class RuntimeSandbox {
  private constructor(
    /** The work directory (removed at teardown). */
    readonly dir: string,
    /** PID 1 of the namespaces, as the test process sees it. */
    readonly pid: number,
    /** A busybox root filesystem for `--rootfs` (shared by the sandbox's containers). */
    readonly rootfs: string,
    /** Whether it has a cgroup namespace of its own (commands then run in it). */
    private readonly cgroupns = false,
  ) {}

  /** The cgroup (relative to the sandbox's cgroup namespace) a runtime puts its cgroups under. */
  get cgroupParent(): string {
    return `/${path.basename(this.dir)}`;
  }

  /** Makes the namespaces and the world in them; torn down after the test or describe that made it. */
  static async start(opts: RuntimeSandboxOptions): Promise<RuntimeSandbox> {
    assertInSandbox();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `nsnet-rt-${opts.prefix}-`));
    fs.chmodSync(dir, 0o755);
    let child: ChildProcess | undefined;
    let init = 0;
    const stop = async (): Promise<void> => {
      if (child && child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child!.once('exit', r));
        try {
          // PID 1 of the pid namespace: when it dies the kernel kills every process in there.
          if (init > 0) process.kill(init, 'SIGKILL');
          else child.kill('SIGKILL');
        } catch {
          /* already gone */
        }
        await gone;
      }
      if (opts.cgroups) removeCgroups(`/${path.basename(dir)}`);
      fs.rmSync(dir, { recursive: true, force: true });
    };
    registerCleanup(stop, `stop the runtime sandbox ${dir}`);

    const rootfs = path.join(dir, 'rootfs');
    makeRootfs(rootfs);
    fs.mkdirSync(path.join(dir, 'ovl'));
    fs.mkdirSync(path.join(dir, 'ext-www', 'cgi-bin'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'ext-www', 'cgi-bin', 'who'), WHO_CGI.replace('$(hostname)', 'ext'), { mode: 0o755 });
    const bindArgs: string[] = [];
    for (const [rel, target] of opts.binds ?? []) {
      const src = path.join(dir, rel);
      fs.mkdirSync(src, { recursive: true });
      bindArgs.push(src, target);
    }
    child = spawn(
      'unshare',
      [
        '--net',
        '--mount',
        '--pid',
        '--fork',
        '--mount-proc',
        '--propagation',
        'private',
        ...(opts.cgroups ? ['--cgroup'] : []),
        '--',
        'bash',
        '-c',
        INIT,
        'init',
        dir,
        ...bindArgs,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', REAPER, ...(opts.cgroups ? { CGROUPS: '1', CGROUP_MOUNTS: cgroupMounts() } : {}) },
      },
    );
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
    });
    child.stderr!.on('data', (d) => {
      out += d;
    });
    await new Promise<void>((resolve, reject) => {
      const onData = (): void => {
        if (out.includes('ready\n')) {
          child!.stdout!.off('data', onData);
          resolve();
        }
      };
      child!.stdout!.on('data', onData);
      child!.once('exit', (code) => reject(new Error(`the runtime sandbox did not start (exit ${code}): ${out}`)));
    });
    // PID 1 of the new pid namespace is the process unshare forked (its pid as seen from here).
    init = Number(fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/u)[0]);
    if (!(init > 0)) throw new Error(`the runtime sandbox's PID 1 is not to be found (unshare is ${child.pid})`);
    return new RuntimeSandbox(dir, init, rootfs, opts.cgroups === true);
  }

  /** Runs a command inside the namespaces (as a process of the private pid namespace). */
  exec(cmd: string, args: string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
    const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', ...opts.env };
    return new Promise((resolve, reject) => {
      const p = spawn('nsenter', ['-t', String(this.pid), '-n', '-m', '-p', ...(this.cgroupns ? ['-C'] : []), '--wd=/', '--', cmd, ...args], {
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => {
        stdout += d;
      });
      p.stderr.on('data', (d) => {
        stderr += d;
      });
      p.stdin.on('error', () => undefined);
      p.stdin.end(opts.input ?? '');
      const timer = setTimeout(() => {
        // nsenter dies; what it started in the pid namespace may live on holding the pipes.
        p.kill('SIGKILL');
        p.stdout.destroy();
        p.stderr.destroy();
        resolve({ code: null, stdout, stderr: `${stderr}\n(killed after ${opts.timeoutMs ?? 60000} ms)` });
      }, opts.timeoutMs ?? 60000);
      p.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      p.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** exec() that throws (with stdout and stderr) unless the command succeeds; returns stdout. */
  async check(cmd: string, args: string[] = [], opts: ExecOptions = {}): Promise<string> {
    const r = await this.exec(cmd, args, opts);
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code}\n${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /**
   * What an HTTP GET of `url` returns, from the host namespace or the external peer ('' when
   * nothing answers within `timeoutS` seconds).
   */
  async fetch(url: string, from: 'host' | 'ext' = 'host', timeoutS = 3): Promise<string> {
    const get = ['sh', '-c', httpGetScript(url, timeoutS, 'busybox ')];
    const r = from === 'host' ? await this.exec(get[0], get.slice(1)) : await this.exec('ip', ['netns', 'exec', 'ext', ...get]);
    return httpBody(r.stdout);
  }

  /** The host namespace's links (names). */
  async links(): Promise<string[]> {
    return (JSON.parse(await this.check('ip', ['-j', 'link', 'show'])) as { ifname: string }[]).map((l) => l.ifname);
  }

  /** Named namespaces (/run/netns), the external peer's left out. */
  async namedNetns(): Promise<string[]> {
    return (await this.check('ip', ['netns', 'list']))
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter((n) => n !== '' && n !== 'ext');
  }

  /** `nft -j list ruleset` in the host namespace: the list of objects. */
  async nft(): Promise<any[]> {
    const out = (await this.check('nft', ['-j', 'list', 'ruleset'])).trim();
    return out === '' ? [] : (JSON.parse(out) as { nftables: any[] }).nftables;
  }

  /** Comments of nsnet's set and map elements owned by endpoints (`ep:<endpoint id>`). */
  async nsnetElementOwners(): Promise<string[]> {
    const owners: string[] = [];
    for (const o of await this.nft()) {
      const s = o.set ?? o.map;
      if (!s || !String(s.table).startsWith('nsnet') || !Array.isArray(s.elem)) continue;
      for (const e of s.elem) {
        // A set element is { elem: { val, comment } }; a map element is [that, value].
        const c = (Array.isArray(e) ? e[0] : e)?.elem?.comment;
        if (typeof c === 'string' && c.startsWith('ep:')) owners.push(c.slice(3));
      }
    }
    return owners;
  }

  /** Files in a directory of the sandbox's view (e.g. libcni's cache, /var/lib/cni/results). */
  async filesIn(dir: string): Promise<string[]> {
    const r = await this.exec('ls', ['-1', dir]);
    return r.code === 0 ? r.stdout.split('\n').filter(Boolean) : [];
  }
}

/**
 * A shell snippet mounting this process's cgroup hierarchies writable on /sys/fs/cgroup (as
 * seen from a cgroup namespace made here): each v1 hierarchy of /proc/self/cgroup, or cgroup2.
 */
function cgroupMounts(): string {
  const hierarchies = fs
    .readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .map((l) => l.split(':')[1])
    .filter((h): h is string => !!h);
  const lines = ['mount -t tmpfs -o mode=0755 rt-cgroups /sys/fs/cgroup'];
  if (hierarchies.length === 0) lines.push('mount -t cgroup2 rt-cgroup2 /sys/fs/cgroup');
  // Where a host mounts them: /sys/fs/cgroup/memory, /sys/fs/cgroup/systemd for name=systemd (runc looks there).
  for (const h of hierarchies)
    lines.push(
      `mkdir -p '/sys/fs/cgroup/${h.replace(/^name=/u, '')}' && mount -t cgroup -o '${h.startsWith('name=') ? `none,${h}` : h}' rt-cgroup '/sys/fs/cgroup/${h.replace(/^name=/u, '')}'`,
    );
  return lines.join('\n');
}

/** Removes the cgroups a runtime made under `parent` (in a cgroup namespace rooted where the sandbox's was). */
function removeCgroups(parent: string): void {
  spawnSync(
    'unshare',
    [
      '--mount',
      '--cgroup',
      '--propagation',
      'private',
      '--',
      'bash',
      '-c',
      `${cgroupMounts()}\nfor d in /sys/fs/cgroup/*${parent} /sys/fs/cgroup${parent}; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done; true`,
    ],
    { stdio: 'ignore' },
  );
}

/** A busybox-static root filesystem: /bin with the applets, /www/cgi-bin/who, the mount points. */
function makeRootfs(dir: string): void {
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'run', 'www/cgi-bin']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.copyFileSync(busyboxPath(), path.join(dir, 'bin', 'busybox'));
  fs.chmodSync(path.join(dir, 'bin', 'busybox'), 0o755);
  for (const a of APPLETS) fs.symlinkSync('busybox', path.join(dir, 'bin', a));
  fs.writeFileSync(path.join(dir, 'www', 'cgi-bin', 'who'), WHO_CGI, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'www', 'index.html'), 'busybox\n');
  fs.writeFileSync(path.join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  fs.writeFileSync(path.join(dir, 'etc', 'group'), 'root:x:0:\n');
}

/** The static busybox (Debian's busybox-static installs it as /bin/busybox). */
function busyboxPath(): string {
  for (const p of ['/bin/busybox', '/usr/bin/busybox']) if (fs.existsSync(p)) return fs.realpathSync(p);
  throw new Error('busybox is not installed (apt-get install busybox-static)');
}
