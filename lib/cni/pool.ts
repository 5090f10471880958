/**
 * The daemon's NetworkHosts, by state directory and host namespace: opened on a request's
 * first use, lent to each request (./context.ts HostLease), and kept open between requests so
 * each one pays only for its own work. A host namespace other than the daemon's own is held
 * open by an fd while its entry lives; such entries are closed after `idleMs` unused (sweep()).
 * A request that finds an entry stale invalidates it: it is closed once released, and the next
 * request opens a fresh one.
 */
import { openNetns, type NetnsHandle, type NetnsSpec } from '../netns';
import { openLease, type HostLease } from './context';

interface PoolEntry {
  key: string;
  opening: Promise<Awaited<ReturnType<typeof openLease>>>;
  /** The host namespace, held open (undefined: the daemon's own). */
  ns: NetnsHandle | undefined;
  refs: number;
  lastUsed: number;
  /** Closed once released: a request found it stale (see run()). */
  invalid: boolean;
}

/** NetworkHosts by state directory and host namespace. */
export class HostPool {
  private readonly entries = new Map<string, PoolEntry>();

  constructor(
    private readonly ownInode: number,
    private readonly idleMs: number,
  ) {}

  async lease(stateDir: string, spec: NetnsSpec | undefined): Promise<HostLease> {
    let ns: NetnsHandle | undefined;
    if (spec !== undefined) {
      ns = openNetns(spec); // ERR_NETNS_NOT_FOUND for a hostNetns that does not exist
      if (ns.inode === this.ownInode) {
        ns.close();
        ns = undefined;
      }
    }
    const key = `${stateDir}\0${ns?.inode ?? this.ownInode}`;
    let entry = this.entries.get(key);
    if (entry && !entry.invalid) ns?.close();
    else {
      const netns = ns === undefined ? undefined : { fd: ns.fd };
      entry = { key, opening: openLease(stateDir, netns), ns, refs: 0, lastUsed: Date.now(), invalid: false };
      this.entries.set(key, entry);
      const e = entry;
      e.opening.catch(() => {
        if (this.entries.get(key) === e) this.entries.delete(key);
        e.ns?.close();
      });
    }
    const e = entry;
    e.refs++;
    let l: Awaited<ReturnType<typeof openLease>>;
    try {
      l = await e.opening;
    } catch (err) {
      e.refs--;
      throw err;
    }
    let released = false;
    return {
      host: l.host,
      netlink: l.netlink,
      netns: l.netns,
      invalidate: () => {
        e.invalid = true;
        if (this.entries.get(key) === e) this.entries.delete(key);
      },
      release: async () => {
        if (released) return;
        released = true;
        e.refs--;
        e.lastUsed = Date.now();
        if (e.invalid && e.refs === 0) await this.closeEntry(e);
      },
    };
  }

  private async closeEntry(e: PoolEntry): Promise<void> {
    if (this.entries.get(e.key) === e) this.entries.delete(e.key);
    try {
      await (await e.opening).close();
    } catch {
      /* failed to open: nothing to close */
    }
    e.ns?.close();
  }

  /** Closes foreign host namespaces' entries unused for the idle time. */
  async sweep(): Promise<void> {
    const now = Date.now();
    for (const e of [...this.entries.values()]) {
      if (e.refs === 0 && e.ns !== undefined && now - e.lastUsed >= this.idleMs) await this.closeEntry(e);
    }
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => this.closeEntry(e)));
  }
}
