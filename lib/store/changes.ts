/**
 * How a reader in another process follows a {@link FileStore}: a cheap synchronous stamp of its
 * committed state, and a watch that fires after commits.
 *
 * Every commit writes its record to `journal.log` and then its position (generation, end) to
 * the store's lock file `.lock` (lib/store/wal.ts), before `update()` resolves: a stamp is the
 * lock file's content, size, mtime and ctime, with the state directory's own inode times
 * (stores written by earlier versions renamed a journal into the directory at every commit).
 * A reader that took a stamp, then read the store, knows its copy is current as long as a
 * fresh stamp equals the one it took. The position tells every commit of this version apart;
 * for the times (a store an earlier version writes too) there is a caveat: file system timestamps come from a coarse clock (one tick, 1 to
 * 10 ms, unless the kernel has multigrain timestamps), so a commit in the same tick as an
 * earlier change can leave the times as they were. A stamp therefore says whether it is
 * `stable`: taken at least {@link COARSE_MS} after the last change, so that any later commit
 * must show in it. A reader holding an unstable stamp reads again rather than trust it.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native, type NativeChangeWatch } from '../native';

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

/**
 * The lock file's content last read, per lock file, with the times it was read at. A resolver
 * takes a stamp for every query: when the lock file's size and times are what they were at a
 * read taken at least COARSE_MS after its last change, no commit can have happened since (one
 * would have moved its mtime), so the content read then is still its content — two stat(2)
 * per query instead of two and an open, a read and a close.
 */
const positions = new Map<string, { key: string; position: string }>();

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
  const lock = path.join(dir, '.lock');
  const lst = fs.statSync(lock, { bigint: true, throwIfNoEntry: false });
  if (lst) {
    if (lst.mtimeNs > changed) changed = lst.mtimeNs;
    if (lst.ctimeNs > changed) changed = lst.ctimeNs;
    const key = `${lst.ino}:${lst.size}:${lst.mtimeNs}:${lst.ctimeNs}`;
    const known = positions.get(lock);
    let position = '';
    if (known?.key === key) position = known.position;
    else {
      try {
        position = fs.readFileSync(lock, 'utf8').trim();
      } catch {
        /* unreadable: the times still tell */
      }
      const lastChange = Number((lst.mtimeNs > lst.ctimeNs ? lst.mtimeNs : lst.ctimeNs) / 1000000n);
      if (Date.now() - lastChange >= COARSE_MS) {
        if (positions.size >= 64) positions.clear(); // a few state directories per process
        positions.set(lock, { key, position });
      } else positions.delete(lock);
    }
    id += `/${lst.size}:${lst.mtimeNs}:${lst.ctimeNs}:${position}`;
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

/**
 * A counter of the changes in the state directory, read synchronously: an inotify watch whose
 * pending events are drained at each `generation()` (native/udp/change_watch.h). Every commit
 * writes the lock file before `update()` resolves, and the kernel queues the event inside that
 * write: so a reader that took a generation, then read the store, holds the committed state of
 * every `update()` that resolved before a later `generation()` that still returns the same
 * number — with no clock involved, unlike a stamp. Undefined where the directory cannot be
 * watched (no inotify, the watch limit reached): callers fall back to stamps.
 */
export function watchGenerations(dir: string): NativeChangeWatch | undefined {
  try {
    return new native.ChangeWatch(dir);
  } catch {
    return undefined;
  }
}
