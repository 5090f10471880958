/**
 * Podman (Debian's 4.3: the CNI network backend, crun, vfs storage) driving nsnet-cni inside a
 * {@link RuntimeSandbox}, configured the way a user would configure it: a containers.conf and a
 * storage.conf in /etc/containers (the sandbox binds a private directory there, so conmon's
 * exit command — `podman container cleanup`, which gets none of podman's environment — reads
 * them too), conflists in a network config directory, and a CNI plugin directory holding the
 * reference plugins and nsnet-cni. Containers run a busybox rootfs with `--rootfs` (no image,
 * no registry).
 *
 * nsnet-cni is installed as a symlink to the checkout's bin/nsnet-cni (the README says it works);
 * as a plain copy of it (`install: 'copy'`, how CNI plugins are usually installed: it cannot know
 * where its package is and says so, ERR_NOT_INSTALLED); or as a two-line
 * wrapper that appends each call (verb, container, interface, netns, CNI_ARGS) to a log and
 * execs the same launcher (`install: 'record'`): the test then knows which calls the runtime
 * made.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nsnetLeftovers, waitFor, type ContainerRuntime, type Leftovers, type RunOptions } from './runtime';
import { RuntimeSandbox, httpBody, httpGetScript, missingTools, type ExecResult } from './runtime-sandbox';

/** The checkout's root (tests run from dist/test/helpers). */
export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const LAUNCHER = path.join(ROOT, 'bin', 'nsnet-cni');
/** The reference plugins (Debian containernetworking-plugins). */
export const REFERENCE_PLUGINS = '/usr/lib/cni';

/** A reason to skip the podman tier here, or undefined when everything it needs is installed. */
export function podmanMissing(): string | undefined {
  const tools = missingTools(['podman', 'crun', 'conmon', 'nft']);
  if (tools) return `${tools} (the runtimes tier needs: apt-get install podman crun conmon busybox-static)`;
  if (!fs.existsSync('/etc/containers')) return '/etc/containers does not exist (podman is not installed properly)';
  if (!fs.existsSync(path.join(REFERENCE_PLUGINS, 'portmap'))) return `${REFERENCE_PLUGINS}/portmap is missing (apt-get install containernetworking-plugins)`;
  if (!fs.existsSync(path.join(ROOT, 'build', 'Release', 'nsnet-cni'))) return 'the nsnet-cni client was not built (npm run build:native)';
  return undefined;
}

/** One recorded plugin call. */
export interface CniCall {
  command: string;
  containerId: string;
  ifname: string;
  netns: string;
  args: string;
}

export interface PodmanOptions {
  prefix: string;
  /** How nsnet-cni is put in the plugin directory (default: a symlink to bin/nsnet-cni). */
  install?: 'symlink' | 'copy' | 'record';
  /**
   * Start the nsnet-cni daemon in the sandbox first (default: none; the client falls back to
   * node). podman then runs with NSNET_CNI_MAIN naming no file, so the client cannot fall back
   * for the calls podman makes: each must be served by the daemon. (conmon's exit command,
   * `podman container cleanup`, gets none of podman's environment and may still fall back.)
   */
  daemon?: boolean;
}

export interface NetworkOptions {
  subnet: string;
  /** The conflist's cniVersion (default 1.0.0: what podman 4.3's libcni parses). */
  version?: string;
  /** More fields of nsnet-cni's configuration. */
  nsnet?: Record<string, unknown>;
  /** Plugins chained after nsnet-cni. */
  chain?: Record<string, unknown>[];
}

export class Podman implements ContainerRuntime {
  readonly name = 'podman';
  readonly stateDir: string;
  readonly netDir: string;
  readonly pluginDir: string;
  private readonly callLog: string;
  /** podman's environment (besides PATH and HOME). */
  private env: Record<string, string> = {};

  private constructor(readonly sandbox: RuntimeSandbox) {
    this.stateDir = path.join(sandbox.dir, 'nsnet');
    this.netDir = path.join(sandbox.dir, 'net.d');
    this.pluginDir = path.join(sandbox.dir, 'cni-bin');
    this.callLog = path.join(sandbox.dir, 'cni-calls.log');
  }

  /** A sandbox with podman configured in it (torn down after the test or describe that made it). */
  static async start(opts: PodmanOptions): Promise<Podman> {
    const sb = await RuntimeSandbox.start({ prefix: opts.prefix, binds: [['etc-containers', '/etc/containers']] });
    const p = new Podman(sb);
    const etc = path.join(sb.dir, 'etc-containers');
    fs.writeFileSync(
      path.join(etc, 'containers.conf'),
      `# The runtimes tier's podman: no cgroups, CNI, crun.
[containers]
cgroups = "disabled"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${path.join(sb.dir, 'events.log')}"
runtime = "crun"

[network]
network_backend = "cni"
cni_plugin_dirs = ["${p.pluginDir}"]
network_config_dir = "${p.netDir}"
`,
    );
    fs.writeFileSync(
      path.join(etc, 'storage.conf'),
      `[storage]\ndriver = "vfs"\ngraphroot = "${path.join(sb.dir, 'graph')}"\nrunroot = "/run/containers/storage"\n`,
    );
    fs.writeFileSync(path.join(etc, 'registries.conf'), 'unqualified-search-registries = []\n');
    fs.writeFileSync(path.join(etc, 'policy.json'), '{ "default": [{ "type": "insecureAcceptAnything" }] }\n');
    fs.mkdirSync(p.netDir);
    fs.mkdirSync(p.pluginDir);
    for (const name of fs.readdirSync(REFERENCE_PLUGINS)) fs.symlinkSync(path.join(REFERENCE_PLUGINS, name), path.join(p.pluginDir, name));
    const plugin = path.join(p.pluginDir, 'nsnet-cni');
    if (opts.install === 'copy') {
      fs.copyFileSync(LAUNCHER, plugin);
      fs.chmodSync(plugin, 0o755);
    } else if (opts.install === 'record') {
      fs.writeFileSync(
        plugin,
        `#!/bin/sh
echo "$CNI_COMMAND|\${CNI_CONTAINERID:-}|\${CNI_IFNAME:-}|\${CNI_NETNS:-}|\${CNI_ARGS:-}" >> ${p.callLog}
exec ${LAUNCHER}
`,
        { mode: 0o755 },
      );
    } else {
      fs.symlinkSync(LAUNCHER, plugin);
    }
    if (opts.daemon) {
      await p.startDaemon();
      p.env = { NSNET_CNI_MAIN: path.join(sb.dir, 'no-fallback', 'main.js') };
    }
    return p;
  }

  /** Starts the nsnet-cni daemon on its default socket inside the sandbox. */
  async startDaemon(): Promise<void> {
    const log = path.join(this.sandbox.dir, 'daemon.log');
    const daemon = path.join(ROOT, 'dist', 'lib', 'cni', 'daemon.js');
    await this.sandbox.check('sh', ['-c', `${JSON.stringify(process.execPath)} ${daemon} > ${log} 2>&1 &`]);
    await waitFor(async () => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('listening'), 'the nsnet-cni daemon');
  }

  /** Writes a conflist with nsnet-cni first (then `chain`); returns the network's name. */
  network(name: string, opts: NetworkOptions): string {
    const nsnet = { type: 'nsnet-cni', subnet: opts.subnet, stateDir: this.stateDir, capabilities: { portMappings: true, ips: true }, ...opts.nsnet };
    this.conflist(name, { cniVersion: opts.version ?? '1.0.0', name, plugins: [nsnet, ...(opts.chain ?? [])] });
    return name;
  }

  /** Writes the reference chain (bridge with host-local, then portmap), the way podman's own CNI networks are made. */
  referenceNetwork(name: string, subnet: string, bridge: string): string {
    this.conflist(name, {
      cniVersion: '1.0.0',
      name,
      plugins: [
        {
          type: 'bridge',
          bridge,
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }] },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    });
    return name;
  }

  /** Writes any conflist into the network config directory. */
  conflist(name: string, body: Record<string, unknown>): void {
    fs.writeFileSync(path.join(this.netDir, `${name}.conflist`), `${JSON.stringify(body, null, 2)}\n`);
  }

  /** Runs podman with these arguments inside the sandbox. */
  podman(args: string[], timeoutMs = 120000): Promise<ExecResult> {
    return this.sandbox.exec('podman', args, { timeoutMs, env: this.env });
  }

  /** Runs podman; throws with its output unless it succeeds; returns stdout. */
  async ok(args: string[], timeoutMs?: number): Promise<string> {
    const r = await this.podman(args, timeoutMs);
    if (r.code !== 0) throw new Error(`podman ${args.join(' ')}: exit ${r.code}\n${r.stderr}${r.stdout}${this.describeCalls()}`);
    return r.stdout;
  }

  run(name: string, o: RunOptions): Promise<ExecResult> {
    const args = ['run', o.detach === false ? '--rm' : '-d', '--name', name, '--hostname', name];
    for (const n of o.networks) args.push('--network', n);
    for (const p of o.publish ?? []) args.push('-p', p);
    if (o.ip !== undefined) args.push('--ip', o.ip);
    // --rootfs is a switch: the first argument after the flags is the root filesystem.
    args.push(...(o.flags ?? []), '--rootfs', this.sandbox.rootfs, ...(o.cmd ?? ['/bin/httpd', '-f', '-p', '80', '-h', '/www']));
    return this.podman(args);
  }

  /** run() that throws unless podman succeeds. */
  async start(name: string, o: RunOptions): Promise<void> {
    const r = await this.run(name, o);
    if (r.code !== 0) throw new Error(`podman run ${name}: exit ${r.code}\n${r.stderr}${r.stdout}${this.describeCalls()}`);
  }

  async rm(...names: string[]): Promise<void> {
    if (names.length) await this.ok(['rm', '-f', '-t', '0', '--ignore', ...names]);
  }

  exec(name: string, cmd: string[]): Promise<ExecResult> {
    return this.podman(['exec', name, ...cmd]);
  }

  /** What an HTTP GET of `url` from inside container `name` returns ('' when nothing answers). */
  async fetchFrom(name: string, url: string, timeoutS = 3): Promise<string> {
    const r = await this.exec(name, ['sh', '-c', httpGetScript(url, timeoutS)]);
    return httpBody(r.stdout);
  }

  async ipOf(name: string, network: string): Promise<string> {
    const nets = JSON.parse(await this.ok(['inspect', '--format', '{{json .NetworkSettings.Networks}}', name])) as Record<string, { IPAddress?: string }>;
    const ip = nets[network]?.IPAddress;
    if (!ip) throw new Error(`podman reports no address of ${name} on ${network}: ${JSON.stringify(nets)}`);
    return ip;
  }

  /** The container's id. */
  async idOf(name: string): Promise<string> {
    return (await this.ok(['inspect', '--format', '{{.Id}}', name])).trim();
  }

  /** The plugin calls recorded so far (with `install: 'record'`). */
  calls(): CniCall[] {
    if (!fs.existsSync(this.callLog)) return [];
    return fs
      .readFileSync(this.callLog, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [command, containerId, ifname, netns, ...args] = l.split('|');
        return { command, containerId, ifname, netns, args: args.join('|') };
      });
  }

  private describeCalls(): string {
    const calls = this.calls().filter((c) => c.command !== 'VERSION');
    return calls.length ? `\nnsnet-cni calls:\n  ${calls.map((c) => `${c.command} ${c.containerId.slice(0, 12)} ${c.ifname} ${c.args}`).join('\n  ')}` : '';
  }

  async leftovers(): Promise<Leftovers> {
    const containers = (await this.ok(['ps', '-a', '--format', '{{.Names}}'])).split('\n').filter(Boolean).sort();
    return { ...(await nsnetLeftovers(this.sandbox, this.stateDir)), runtimeCache: (await this.sandbox.filesIn('/var/lib/cni/results')).sort(), containers };
  }
}
