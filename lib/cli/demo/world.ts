/**
 * The demo's world and its teardown. Everything the demo makes is registered here the moment it
 * exists — namespaces, processes, the state directory, open handles — and cleanup() removes it
 * all, once, whether the demo succeeded, failed or was interrupted. Every handle made here is
 * bound to a namespace the demo created; the namespace the demo was started in is only ever
 * read (demo.ts's before/after check), never changed.
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Netlink } from '../../netlink/netlink';
import { NETNS_DIR, Netns } from '../../netns';

export class World {
  /** Unique per run: `nsdemo-<tag>-<role>` namespaces. */
  readonly tag = `${process.pid.toString(36)}${Math.floor(Math.random() * 36 ** 3)
    .toString(36)
    .padStart(3, '0')}`;
  readonly stateDir: string;
  private readonly namespaces: string[] = [];
  private readonly processes = new Set<ChildProcess>();
  private readonly handles: { close(): unknown }[] = [];
  private cleaning: Promise<string[]> | undefined;

  constructor() {
    this.stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-demo-'));
  }

  get closing(): boolean {
    return this.cleaning !== undefined;
  }

  /** Creates `nsdemo-<tag>-<role>` (loopback up) and returns its name. */
  async netns(role: string): Promise<string> {
    if (this.closing) throw new Error('interrupted');
    const name = `nsdemo-${this.tag}-${role}`;
    this.namespaces.push(name); // before: a half-made one is removed too
    await Netns.create(name);
    return name;
  }

  /** A rtnetlink handle bound to one of the demo's namespaces (closed at cleanup). */
  async netlink(ns: string): Promise<Netlink> {
    if (!this.namespaces.includes(ns)) throw new Error(`${ns} is not one of the demo's namespaces`);
    return this.handle(await Netlink.open({ netns: ns }));
  }

  handle<T extends { close(): unknown }>(h: T): T {
    this.handles.push(h);
    return h;
  }

  /** A process to kill at cleanup. */
  track(p: ChildProcess): ChildProcess {
    this.processes.add(p);
    p.once('exit', () => this.processes.delete(p));
    return p;
  }

  /** Removes everything (once; later calls wait for the first). Resolves to what could not be removed. */
  cleanup(): Promise<string[]> {
    this.cleaning ??= this.teardown();
    return this.cleaning;
  }

  private async teardown(): Promise<string[]> {
    const problems: string[] = [];
    const exited = [...this.processes].map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          p.once('exit', () => resolve());
          p.kill('SIGKILL');
        }),
    );
    await Promise.race([Promise.all(exited), new Promise((r) => setTimeout(r, 3000).unref())]);
    for (const h of this.handles.splice(0).reverse()) {
      try {
        await h.close();
      } catch (e) {
        problems.push(`close a handle: ${(e as Error).message}`);
      }
    }
    // Deleting a namespace deletes every link, address, route and nftables table in it.
    for (const ns of this.namespaces.splice(0).reverse()) {
      try {
        if (fs.existsSync(path.join(NETNS_DIR, ns))) await Netns.remove(ns);
      } catch (e) {
        problems.push(`remove namespace ${ns}: ${(e as Error).message}`);
      }
    }
    try {
      fs.rmSync(this.stateDir, { recursive: true, force: true });
    } catch (e) {
      problems.push(`remove ${this.stateDir}: ${(e as Error).message}`);
    }
    return problems;
  }
}
