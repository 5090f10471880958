/**
 * Docker (Debian's docker.io 20.10: containerd, dockerd, runc) using `nsnet docker-plugin` as its
 * network and IPAM driver, inside a {@link RuntimeSandbox} with cgroups (runc needs them):
 * containerd and dockerd with private roots and sockets, `--iptables=false --ip6tables=false
 * --bridge=none --storage-driver=vfs`, their cgroups under the sandbox's own parent; the plugin
 * on its default socket /run/docker/plugins/nsnet.sock (the sandbox's private /run), where
 * dockerd finds it by name. Containers run the image `bb:latest`, made by `docker import` of
 * the sandbox's busybox rootfs (no registry).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { ROOT } from './podman';
import { nsnetLeftovers, waitFor, type ContainerRuntime, type Leftovers, type RunOptions } from './runtime';
import { RuntimeSandbox, httpBody, httpGetScript, missingTools, type ExecResult } from './runtime-sandbox';

/** Debian's docker client (another `docker` may come first on PATH). */
const DOCKER = '/usr/bin/docker';
const DOCKER_SOCK = '/run/dk/docker.sock';
export const PLUGIN_SOCKET = '/run/docker/plugins/nsnet.sock';
export const IMAGE = 'bb:latest';

/** A reason to skip the docker tier here, or undefined when everything it needs is installed. */
export function dockerMissing(): string | undefined {
  const tools = missingTools(['dockerd', 'containerd', 'runc', DOCKER, 'nft', 'setpriv']);
  if (tools) return `${tools} (the runtimes tier needs: apt-get install docker.io busybox-static)`;
  return undefined;
}

export interface DockerOptions {
  prefix: string;
  /** Start dockerd (default true; false: the plugin alone, for raw requests). */
  dockerd?: boolean;
  /** dockerd --live-restore: containers keep running while dockerd restarts. */
  liveRestore?: boolean;
}

/** A raw reply of the plugin. */
export interface RawReply {
  status: number;
  body: any;
}

export class Docker implements ContainerRuntime {
  readonly name = 'docker';
  readonly stateDir: string;
  private readonly log: (what: string) => string;
  private pluginRuns = 0;
  private liveRestore = false;

  private constructor(readonly sandbox: RuntimeSandbox) {
    this.stateDir = path.join(sandbox.dir, 'nsnet');
    this.log = (what) => path.join(sandbox.dir, `${what}.log`);
  }

  static async start(opts: DockerOptions): Promise<Docker> {
    const sb = await RuntimeSandbox.start({ prefix: opts.prefix, cgroups: true });
    const d = new Docker(sb);
    d.liveRestore = opts.liveRestore === true;
    await d.startPlugin();
    if (opts.dockerd !== false) {
      await sb.check('sh', [
        '-c',
        `containerd --root ${sb.dir}/containerd --state /run/containerd-rt --address /run/containerd-rt.sock > ${d.log('containerd')} 2>&1 &`,
      ]);
      await waitFor(async () => (await sb.exec('test', ['-S', '/run/containerd-rt.sock'])).code === 0, 'containerd');
      await d.startDockerd();
      await sb.check('sh', ['-c', `tar -C ${sb.rootfs} -c . | ${DOCKER} import - ${IMAGE}`], { env: { DOCKER_HOST: `unix://${DOCKER_SOCK}` } });
    }
    return d;
  }

  /** Starts dockerd (again). */
  async startDockerd(): Promise<void> {
    const flags = [
      '--containerd',
      '/run/containerd-rt.sock',
      '--data-root',
      `${this.sandbox.dir}/docker`,
      '--exec-root',
      '/run/dk/exec',
      '-H',
      `unix://${DOCKER_SOCK}`,
      '--pidfile',
      '/run/dk/docker.pid',
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--storage-driver=vfs',
      '--cgroup-parent',
      this.sandbox.cgroupParent,
      ...(this.liveRestore ? ['--live-restore'] : []),
    ];
    await this.sandbox.check('sh', ['-c', `mkdir -p /run/dk; dockerd ${flags.join(' ')} >> ${this.log('dockerd')} 2>&1 &`]);
    await waitFor(async () => (await this.docker(['version', '--format', '{{.Server.Version}}'])).code === 0, 'dockerd', 60000);
  }

  /** Stops dockerd with a signal and waits until it is gone. */
  async stopDockerd(signal = 'TERM'): Promise<void> {
    await this.sandbox.check('sh', ['-c', `kill -${signal} $(cat /run/dk/docker.pid)`]);
    await waitFor(async () => (await this.sandbox.exec('sh', ['-c', 'kill -0 $(cat /run/dk/docker.pid) 2>/dev/null'])).code !== 0, 'dockerd to stop', 60000);
  }

  /** Starts `nsnet docker-plugin` (again) and waits until it listens. */
  async startPlugin(): Promise<void> {
    const runs = ++this.pluginRuns;
    const cli = path.join(ROOT, 'bin', 'nsnet');
    await this.sandbox.check('sh', [
      '-c',
      `${JSON.stringify(process.execPath)} ${cli} --state-dir ${this.stateDir} docker-plugin --verbose >> ${this.log('plugin')} 2>&1 & echo $! > /run/nsnet-plugin.pid`,
    ]);
    await waitFor(async () => (fs.readFileSync(this.log('plugin'), 'utf8').match(/listening on/gu) ?? []).length >= runs, 'the plugin to listen');
  }

  /** Stops the plugin (SIGKILL by default: what a crash does) and waits until it is gone. */
  async stopPlugin(signal = 'KILL'): Promise<void> {
    await this.sandbox.check('sh', ['-c', `kill -${signal} $(cat /run/nsnet-plugin.pid)`]);
    await waitFor(async () => (await this.sandbox.exec('sh', ['-c', 'kill -0 $(cat /run/nsnet-plugin.pid) 2>/dev/null'])).code !== 0, 'the plugin to stop');
  }

  /** The plugin's socket as the test process reaches it (through the sandbox's root). */
  get pluginSocket(): string {
    return `/proc/${this.sandbox.pid}/root${PLUGIN_SOCKET}`;
  }

  /** One raw request to the plugin: POST /<method> with `body` as it is (a string is sent verbatim). */
  request(method: string, body: unknown): Promise<RawReply> {
    const data = typeof body === 'string' ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.pluginSocket,
          path: `/${method}`,
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) },
        },
        (res) => {
          let text = '';
          res.on('data', (c) => {
            text += c;
          });
          res.on('end', () => {
            try {
              resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
            } catch {
              reject(new Error(`${method}: the reply is not JSON: ${text}`));
            }
          });
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  }

  /** Runs the docker client in the sandbox. */
  docker(args: string[], timeoutMs = 120000): Promise<ExecResult> {
    return this.sandbox.exec(DOCKER, args, { timeoutMs, env: { DOCKER_HOST: `unix://${DOCKER_SOCK}` } });
  }

  /** docker that throws with its output (and the plugin's log) unless it succeeds; returns stdout. */
  async ok(args: string[], timeoutMs?: number): Promise<string> {
    const r = await this.docker(args, timeoutMs);
    if (r.code !== 0)
      throw new Error(
        `docker ${args.join(' ')}: exit ${r.code}\n${r.stderr}${r.stdout}\nplugin log (tail):\n${this.pluginLog().split('\n').slice(-15).join('\n')}`,
      );
    return r.stdout;
  }

  /** What the plugin printed (one line per request with --verbose). */
  pluginLog(): string {
    return fs.existsSync(this.log('plugin')) ? fs.readFileSync(this.log('plugin'), 'utf8') : '';
  }

  /** `docker network create -d nsnet …`; returns the network's id. */
  async network(name: string, flags: string[] = []): Promise<string> {
    return (await this.ok(['network', 'create', '-d', 'nsnet', ...flags, name])).trim();
  }

  run(name: string, o: RunOptions): Promise<ExecResult> {
    const args = ['run', o.detach === false ? '--rm' : '-d', '--name', name, '--hostname', name];
    for (const n of o.networks) args.push('--network', n);
    for (const p of o.publish ?? []) args.push('-p', p);
    if (o.ip !== undefined) args.push('--ip', o.ip);
    args.push(...(o.flags ?? []), IMAGE, ...(o.cmd ?? ['/bin/httpd', '-f', '-p', '80', '-h', '/www']));
    return this.docker(args);
  }

  /** run() that throws unless docker succeeds. */
  async start(name: string, o: RunOptions): Promise<void> {
    const r = await this.run(name, o);
    if (r.code !== 0)
      throw new Error(`docker run ${name}: exit ${r.code}\n${r.stderr}${r.stdout}\nplugin log (tail):\n${this.pluginLog().split('\n').slice(-15).join('\n')}`);
  }

  async rm(...names: string[]): Promise<void> {
    if (names.length) await this.ok(['rm', '-f', ...names]);
  }

  exec(name: string, cmd: string[]): Promise<ExecResult> {
    return this.docker(['exec', name, ...cmd]);
  }

  /** What an HTTP GET of `url` from inside container `name` returns ('' when nothing answers). */
  async fetchFrom(name: string, url: string, timeoutS = 3): Promise<string> {
    const r = await this.exec(name, ['sh', '-c', httpGetScript(url, timeoutS)]);
    return httpBody(r.stdout);
  }

  async ipOf(name: string, network: string): Promise<string> {
    const nets = JSON.parse(await this.ok(['inspect', '--format', '{{json .NetworkSettings.Networks}}', name])) as Record<string, { IPAddress?: string }>;
    const ip = nets[network]?.IPAddress;
    if (!ip) throw new Error(`docker reports no address of ${name} on ${network}: ${JSON.stringify(nets)}`);
    return ip;
  }

  /** Docker's endpoints on its nsnet networks (`network/container`). */
  async dockerEndpoints(): Promise<string[]> {
    const ids = (await this.ok(['network', 'ls', '-q', '--filter', 'driver=nsnet'])).split('\n').filter(Boolean);
    if (!ids.length) return [];
    const nets = JSON.parse(await this.ok(['network', 'inspect', ...ids])) as { Name: string; Containers: Record<string, { Name: string }> }[];
    return nets.flatMap((n) => Object.values(n.Containers ?? {}).map((c) => `${n.Name}/${c.Name}`)).sort();
  }

  /** Interfaces waiting in the host namespace for Docker to move them (`nsp…`). */
  async handedOver(): Promise<string[]> {
    return (await this.sandbox.links()).filter((n) => n.startsWith('nsp')).sort();
  }

  async leftovers(): Promise<Leftovers> {
    const containers = (await this.ok(['ps', '-a', '--format', '{{.Names}}'])).split('\n').filter(Boolean).sort();
    const left = await nsnetLeftovers(this.sandbox, this.stateDir);
    return { ...left, veths: [...left.veths, ...(await this.handedOver())], runtimeCache: await this.dockerEndpoints(), containers };
  }
}
