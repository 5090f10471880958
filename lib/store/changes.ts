/**
 * How a reader in another process follows a {@link FileStore}: a cheap synchronous stamp of its
 * committed state, and a watch that fires after commits.
 *
 * Every commit appends its record to `journal.log` in the state directory (its commit point,
 * before `update()` resolves; a checkpoint truncates the log), so the log's size and times change
 * with every commit: a stamp is the log's size, mtime and ctime (nanoseconds) and inode, with the
 * directory's own (the log's creation, and stores written by earlier versions, which renamed a
 * journal into the directory at every commit). A reader that took a
 * stamp, then read the store, knows its copy is current as long as a fresh stamp equals the one
 * it took — with one caveat: file system timestamps come from a coarse clock (one tick, 1 to
 * 10 ms, unless the kernel has multigrain timestamps), so a commit in the same tick as an
 * earlier change can leave the times as they were. A stamp therefore says whether it is
 * `stable`: taken at least {@link COARSE_MS} after the last change, so that any later commit
 * must show in it. A reader holding an unstable stamp reads again rather than trust it.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The state store's write-ahead log (lib/store/wal.ts), in the state directory. */
export const LOG = 'journal.log';

/** More than the coarsest file system clock tick (HZ=100: 10 ms), with margin. */
export const COARSE_MS = 25;

/** See the module comment. */
export interface StoreStamp {
  /** Equal ids: no commit in between (given a stable stamp). */
  readonly id: string;
  /** Taken at least COARSE_MS after the last change: a later commit cannot look like it. */
  readonly stable: boolean;
  /** When the last change happened (ms since the epoch, file system clock). */
  readonly changedAt: number;
}

/** The stamp of the state directory `dir` now. */
export function stampOf(dir: string): StoreStamp {
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(dir, { bigint: true });
  } catch {
    return { id: 'absent', stable: false, changedAt: Date.now() };
  }
  let changed = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
  let id = `${st.ino}:${st.mtimeNs}:${st.ctimeNs}`;
  const log = fs.statSync(path.join(dir, LOG), { bigint: true, throwIfNoEntry: false });
  if (log) {
    if (log.mtimeNs > changed) changed = log.mtimeNs;
    if (log.ctimeNs > changed) changed = log.ctimeNs;
    id += `/${log.ino}:${log.size}:${log.mtimeNs}:${log.ctimeNs}`;
  }
  const changedAt = Number(changed / 1000000n);
  return { id, stable: Date.now() - changedAt >= COARSE_MS, changedAt };
}

/**
 * Calls `onChange` (soon, not synchronously) after something changes in the state directory.
 * Best effort (inotify can overflow, and some file systems have none): pair it with stamps.
 */
export function watchDir(dir: string, onChange: () => void): { close(): void } {
  let w: fs.FSWatcher | undefined;
  try {
    w = fs.watch(dir, { persistent: false }, () => onChange());
    w.on('error', () => {
      w?.close();
      w = undefined;
    });
  } catch {
    w = undefined; // no inotify here: the caller's stamps still tell it
  }
  return { close: () => w?.close() };
}
