/**
 * The daemon's DNS resolvers: one embedded resolver (lib/dns, `runDns`) per state directory and
 * host namespace whose names someone asked it to serve — an ADD of nsnet-cni on a network with
 * DNS, or the nsnet CLI after a `connect` (a control request, see ./protocol.ts). The CLI is one
 * process per command and the library never starts one, so for those two the daemon is who
 * answers the names.
 *
 * The rule that keeps the daemon up: it does not exit when idle while one of its resolvers has a
 * network with DNS on that has at least one endpoint — named or not, every such endpoint was told
 * (connect's `dns`, the CNI result's `dns`) to use the network's gateway as its nameserver, so
 * both its own lookups and the names of the others depend on the daemon. A resolver whose
 * networks have no endpoint is closed after the idle time (`idleMs`, the pool's); one whose
 * state directory or named host namespace is gone (a removed netns, a deleted temporary
 * directory) is closed at the next check, a few seconds later, and lets its namespace go.
 *
 * Restart: the (state directory, host namespace) pairs that can be named again — the daemon's
 * own namespace, or one given by a path outside /proc (`hostNetns`, `--host-netns NAME`) — are
 * kept in a registry beside the socket (`<socket without .sock>.dns.json`). A daemon that
 * starts (systemd's restart after a crash, the next request's autostart) serves them again at
 * once. A stop by signal keeps the registry; the idle exit empties it (nothing was held).
 * Namespaces known only by a client's pid cannot be named again and are not kept.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runDns, type DnsResolver } from '../dns/resolver';
import { NsnetError } from '../errors';
import { netnsPath, openNetns, type NetnsSpec } from '../netns';

/** How often gone state directories and namespaces are looked for, and idle resolvers closed. */
const CHECK_MS = 5000;

/** `/run/nsnet/cni.sock` → `/run/nsnet/cni.dns.json`. */
export function registryPathOf(socket: string): string {
  return `${socket.endsWith('.sock') ? socket.slice(0, -5) : socket}.dns.json`;
}

interface Served {
  key: string;
  stateDir: string;
  /** The host namespace's path for the registry and the "gone" check; undefined: the daemon's own; null: not nameable (a pid's, an fd's). */
  netns: string | undefined | null;
  inode: number;
  resolver: Promise<DnsResolver>;
  lastUsed: number;
  /** Kept past its idle time because containers use it, and said so in the log (once). */
  keptSaid?: boolean;
}

/** What the control request `dns` answers. */
export interface DnsServeReply {
  ok: boolean;
  /** ok: where the resolver listens now. */
  listeners?: { network: string; address: string }[];
  /** ok: addresses it could not listen on, with why. */
  problems?: { address: string; message: string }[];
  /** not ok: why (a code of nsnet's and a message). */
  code?: string;
  message?: string;
}

export interface DaemonResolversOptions {
  /** The daemon's own network namespace (its inode). */
  ownInode: number;
  /** Where the registry lives (undefined: none kept). */
  registry?: string;
  /** A resolver without endpoints is closed after this long unused. */
  idleMs: number;
  log: (msg: string) => void;
}

export class DaemonResolvers {
  private readonly served = new Map<string, Served>();
  private readonly timer: NodeJS.Timeout;
  private restoring: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly o: DaemonResolversOptions) {
    this.timer = setInterval(() => void this.sweep().catch((e: Error) => o.log(`DNS: ${e.message}`)), CHECK_MS);
    this.timer.unref();
  }

  /**
   * Serves DNS for the networks of `stateDir` in host namespace `netns` (undefined: the daemon's
   * own): starts a resolver, or brings the running one up to date with the store (a network
   * created a moment ago gets its listener). Resolves with it.
   */
  async serve(stateDir: string, netns: NetnsSpec | undefined): Promise<DnsResolver> {
    if (this.closed) throw new NsnetError('ERR_NOT_AVAILABLE', 'the daemon is stopping');
    const ns = openNetns(netns);
    try {
      const own = ns.inode === this.o.ownInode;
      const key = `${stateDir}\0${ns.inode}`;
      let s = this.served.get(key);
      if (!s) {
        const name = own ? undefined : typeof netns === 'string' && !netnsPath(netns).startsWith('/proc/') ? netnsPath(netns) : null;
        const resolver = runDns({ stateDir, ...(own ? {} : { netns: { fd: ns.fd } }), onError: (e) => this.o.log(`DNS for ${stateDir}: ${e.message}`) });
        s = { key, stateDir, netns: name, inode: ns.inode, resolver, lastUsed: Date.now() };
        this.served.set(key, s);
        const mine = s;
        resolver.then(
          () => this.save(),
          () => {
            if (this.served.get(key) === mine) this.served.delete(key);
          },
        );
        await resolver;
        return resolver;
      }
      s.lastUsed = Date.now();
      s.keptSaid = false;
      const r = await s.resolver;
      await r.sync();
      return r;
    } finally {
      ns.close();
    }
  }

  /**
   * The CLI's control request `{ op: 'dns', stateDir, pid, netnsInode, hostNetns? }`: serve
   * DNS for `stateDir` in the host namespace the CLI used — `hostNetns` (a path) or, without
   * one, the CLI's own (its pid's) — once the namespace the daemon opens is the one the CLI
   * names by its inode (else a CLI in another mount or pid namespace than the daemon's would get
   * names served in the wrong place: declined). Answers where the resolver listens.
   */
  async handle(req: Record<string, unknown>): Promise<DnsServeReply> {
    const { op, stateDir, pid, netnsInode, hostNetns } = req;
    const text = (x: unknown): x is string => typeof x === 'string' && path.isAbsolute(x) && x.length <= 4096 && !x.includes('\0');
    if (
      op !== 'dns' ||
      !text(stateDir) ||
      (hostNetns !== undefined && !text(hostNetns)) ||
      !Number.isSafeInteger(pid) ||
      (pid as number) < 1 ||
      !Number.isSafeInteger(netnsInode) ||
      (netnsInode as number) < 1
    ) {
      return { ok: false, code: 'ERR_INVALID_ARGUMENT', message: 'a control request the daemon does not know' };
    }
    let ns: ReturnType<typeof openNetns> | undefined;
    try {
      ns = openNetns(hostNetns ?? (pid as number));
      if (ns.inode !== netnsInode) {
        return {
          ok: false,
          code: 'ERR_DECLINED',
          message: `the daemon sees another namespace at ${ns.path} than the caller (it must run in the caller's mount and pid namespaces)`,
        };
      }
      const spec = hostNetns ?? (ns.inode === this.o.ownInode ? undefined : { fd: ns.fd });
      const r = await this.serve(path.normalize(stateDir), spec);
      return { ok: true, listeners: r.listeners(), problems: r.problems().map((p) => ({ address: p.address, message: p.error.message })) };
    } catch (e) {
      return { ok: false, code: (e as NsnetError).code ?? 'ERR_INTERNAL', message: (e as Error).message };
    } finally {
      ns?.close();
    }
  }

  /** Whether a resolver has a network with an endpoint (the daemon must not exit). */
  async holding(): Promise<boolean> {
    await this.restoring;
    for (const s of [...this.served.values()]) if (await this.holds(s)) return true;
    return false;
  }

  /** Serves what the registry names (a daemon that starts after another stopped). */
  restore(): Promise<void> {
    this.restoring = (async () => {
      if (!this.o.registry) return;
      let hosts: { stateDir?: unknown; netns?: unknown }[];
      try {
        hosts = (JSON.parse(fs.readFileSync(this.o.registry, 'utf8')) as { hosts?: [] }).hosts ?? [];
      } catch {
        return; // none, or unreadable: nothing to resume
      }
      for (const h of Array.isArray(hosts) ? hosts : []) {
        if (typeof h?.stateDir !== 'string' || !path.isAbsolute(h.stateDir) || (h.netns !== undefined && typeof h.netns !== 'string')) continue;
        if (!fs.existsSync(h.stateDir)) continue;
        try {
          await this.serve(h.stateDir, h.netns as string | undefined);
        } catch (e) {
          this.o.log(`DNS for ${h.stateDir}: not resumed: ${(e as Error).message}`);
        }
      }
      this.save();
    })();
    return this.restoring;
  }

  /** Closes every resolver; `forget`: empty the registry too (the idle exit: nothing was held). */
  async closeAll(forget: boolean): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.restoring;
    const all = [...this.served.values()];
    this.served.clear();
    await Promise.allSettled(all.map(async (s) => (await s.resolver).close()));
    if (forget && this.o.registry) fs.rmSync(this.o.registry, { force: true });
  }

  /** Closes resolvers whose state directory or host namespace is gone, and idle ones without endpoints. */
  async sweep(): Promise<void> {
    let changed = false;
    for (const s of [...this.served.values()]) {
      if (this.closed) return;
      const gone = !this.present(s);
      if (!gone && Date.now() - s.lastUsed < this.o.idleMs) continue;
      if (!gone && (await this.holds(s))) {
        if (!s.keptSaid)
          this.o.log(
            `DNS for ${s.stateDir}${typeof s.netns === 'string' ? ` in ${s.netns}` : ''}: unused for ${this.o.idleMs / 1000} s, kept: its networks have endpoints`,
          );
        s.keptSaid = true;
        continue;
      }
      if (this.served.get(s.key) !== s) continue;
      this.served.delete(s.key);
      changed = true;
      await (await s.resolver.catch(() => undefined))?.close();
    }
    if (changed) this.save();
  }

  /** The state directory exists, and a named host namespace is still the one served. */
  private present(s: Served): boolean {
    try {
      if (!fs.statSync(s.stateDir).isDirectory()) return false;
      return typeof s.netns !== 'string' || fs.statSync(s.netns).ino === s.inode;
    } catch {
      return false;
    }
  }

  private async holds(s: Served): Promise<boolean> {
    if (!this.present(s)) return false;
    let r: DnsResolver;
    try {
      r = await s.resolver;
      await r.sync();
    } catch {
      return false;
    }
    return r.served().some((n) => n.endpoints > 0);
  }

  /** Writes the registry (atomically, 0600): the pairs a restarted daemon can serve again. */
  private save(): void {
    if (!this.o.registry || this.closed) return;
    const hosts = [...this.served.values()].filter((s) => s.netns !== null).map((s) => ({ stateDir: s.stateDir, ...(s.netns ? { netns: s.netns } : {}) }));
    const tmp = `${this.o.registry}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, `${JSON.stringify({ hosts })}\n`, { mode: 0o600 });
      fs.renameSync(tmp, this.o.registry);
    } catch (e) {
      this.o.log(`DNS: cannot write ${this.o.registry}: ${(e as Error).message}`);
    }
  }
}
