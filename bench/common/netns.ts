/**
 * Throw-away network namespaces for the measurements: made, filled, emptied and deleted with
 * `ip` (untimed setup work), and the fresh-namespace-per-run pattern of the link and nft suites.
 */
import { spawnSync } from 'node:child_process';
import type { Measure } from './measure';
import { run } from './process';

/** Runs `ip -n NS -batch -` with the given lines on stdin (for untimed setup work). */
export function ipBatch(ns: string, lines: string[]): void {
  if (lines.length) run('ip', ['-n', ns, '-batch', '-'], { input: lines.join('\n') + '\n' });
}

/** `ip -batch -` from the bench's own namespace (for `netns add|del` lines). */
export function globalBatch(lines: string[]): void {
  if (lines.length) run('ip', ['-batch', '-'], { input: lines.join('\n') + '\n' });
}

let nsCounter = 0;

/** Names of the namespaces this process made and has not deleted yet. */
const liveNamespaces = new Set<string>();

/**
 * Runs `fn` in a fresh named network namespace (`ip netns add`), then deletes it. `cleanup`
 * runs before the delete; use it to remove many links synchronously, so the kernel's
 * asynchronous namespace teardown has little left to do and does not overlap the next
 * measurement.
 */
export async function withNetns<T>(fn: (ns: string) => Promise<T> | T, cleanup?: (ns: string) => void): Promise<T> {
  const ns = `nsb${process.pid}x${++nsCounter}`;
  run('ip', ['netns', 'add', ns]);
  liveNamespaces.add(ns);
  try {
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    return await fn(ns);
  } finally {
    try {
      cleanup?.(ns);
    } finally {
      run('ip', ['netns', 'del', ns]);
      liveNamespaces.delete(ns);
    }
  }
}

/** Deletes any namespace still left (after an error). */
export function deleteLeftNamespaces(): void {
  for (const ns of liveNamespaces) {
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    liveNamespaces.delete(ns);
  }
}

/** The steps of one run in a fresh namespace; only `body` is timed. */
export interface FreshRun {
  /** Prepares the namespace: the state every tool starts from. */
  setup?: (ns: string) => Promise<void> | void;
  /** The timed work: returns the ms it took. */
  body: (ns: string) => Promise<number> | number;
  /** Proves the work was done (throws if not). */
  check?: (ns: string) => Promise<void> | void;
  /** Empties the namespace before it is deleted (see withNetns). */
  cleanup?: (ns: string) => void;
}

/**
 * A measurement whose every run gets a namespace of its own (withNetns): setup, the timed
 * body, the check, then cleanup and the delete. So every tool starts from the same kernel
 * state, whatever the one before it left.
 */
export function inFreshNetns(steps: FreshRun): Measure {
  return () =>
    withNetns(async (ns) => {
      await steps.setup?.(ns);
      const ms = await steps.body(ns);
      await steps.check?.(ns);
      return ms;
    }, steps.cleanup);
}

/** Opens a library handle (Netlink, NfTables…), runs `fn` with it, and closes it whatever happens. */
export async function withHandle<H extends { close(): unknown }, T>(open: () => Promise<H>, fn: (h: H) => Promise<T>): Promise<T> {
  const h = await open();
  try {
    return await fn(h);
  } finally {
    await h.close();
  }
}

/**
 * Removes every link of a namespace but lo in one kernel operation: put them in a group, then
 * `ip link del group`. Veth peers go with their other end.
 */
export function flushLinks(ns: string, group = 4242): void {
  const r = run('ip', ['-n', ns, '-o', 'link', 'show']);
  const names = r.stdout
    .split('\n')
    .map((l) => /^\d+:\s+([^:@\s]+)/u.exec(l)?.[1])
    .filter((n): n is string => n !== undefined && n !== 'lo');
  if (names.length === 0) return;
  ipBatch(
    ns,
    names.map((n) => `link set ${n} group ${group}`),
  );
  run('ip', ['-n', ns, 'link', 'del', 'group', String(group)]);
}

/** The number of links in a namespace. */
export function countLinks(ns: string): number {
  return run('ip', ['-n', ns, '-o', 'link', 'show'])
    .stdout.split('\n')
    .filter((l) => l.trim()).length;
}
