/**
 * Spare files of a {@link FileStore} (issue 18): a new document's temp file is a spare renamed
 * into its collection and overwritten, and a deleted document's file is renamed back into
 * `.spare/` rather than unlinked. Creating a file was the dearest thing a commit did: ext4 takes
 * 0.25 ms for one here, and more the more files were deleted lately (its allocator reads the
 * inode table to skip inodes freed recently: 17 % of a connect's main-thread time, profiled),
 * against 0.03 ms for a rename — and a connect writes four new documents (endpoint, address,
 * owner, port). When fewer than {@link SPARES_LOW} are known, more are made in the background
 * once the store is idle, by the thread pool (asynchronous calls: off the event loop, and no
 * lock needed, since each has a name of its own and is complete — empty — when it appears).
 *
 * Spares sit outside every collection (no reader lists them), at most {@link SPARES_MAX} of them
 * (an inode and up to 4 KiB each). A process knows the spares it listed once and those it made
 * or put back since; one taken by another process meanwhile is skipped.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ioError } from './files';

/** The directory of spare files: not a collection name (it starts with '.'). */
export const SPARE = '.spare';
/** At most this many spares; past it, deleted documents are unlinked. */
export const SPARES_MAX = 256;
/** Fewer known than this: made up to {@link SPARES_FILL} in the background. */
export const SPARES_LOW = 16;
/** How many spares the background making brings the known ones up to. */
export const SPARES_FILL = 48;
/** Spares are made only once the store has been idle this long. */
export const SPARES_IDLE_MS = 50;

export class Spares {
  /** Spare names this process knows of (listed once, then kept by its own renames), or not listed yet. */
  private names: string[] | undefined;
  private serial = 0;
  private filling: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** When a commit last used the spares. */
  private busyAt = 0;
  private closed = false;
  /** `.spare/` was made or found (cleared when it turns out missing). */
  private dirThere = false;

  constructor(private readonly root: string) {}

  private get dir(): string {
    return path.join(this.root, SPARE);
  }

  /** Renames a spare to `to` (a temp file's name); false when there is none (or no room for its name). */
  take(to: string): boolean {
    const names = this.known();
    for (let name = names.pop(); name !== undefined; name = names.pop()) {
      try {
        fs.renameSync(path.join(this.dir, name), to);
        return true;
      } catch (e) {
        if ((e as { code?: string }).code === 'ENOENT') continue; // taken by another process meanwhile
        names.push(name); // still there (a full disk, say): the caller makes a file, and fails as it would
        return false;
      }
    }
    return false;
  }

  /**
   * Takes a deleted document's file out of its collection: kept as a spare, or unlinked. Absent
   * is fine. It runs after a commit point, so it never needs room: when the spare directory has
   * none for one more name (a full disk), the file is unlinked.
   */
  retire(file: string): void {
    const names = this.known();
    if (names.length < SPARES_MAX && this.made()) {
      const name = this.newName();
      try {
        fs.renameSync(file, path.join(this.dir, name));
        names.push(name);
        // (Not emptied: a document set aside shares its inode with its `.damaged` name, whose
        // bytes must stay. A spare keeps its old bytes until it is overwritten whole; none is
        // ever read.)
        return;
      } catch {
        // The file is gone (fine), the spare directory is (listed again next time), or there is
        // no room for the name: unlinked below, which needs none.
        if (!fs.existsSync(this.dir)) {
          this.names = undefined;
          this.dirThere = false;
        }
      }
    }
    try {
      fs.unlinkSync(file);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw ioError(e, 'delete', file);
    }
  }

  /**
   * After a commit: when fewer than {@link SPARES_LOW} are known, makes spares in the background
   * once the store has been idle for {@link SPARES_IDLE_MS} (so that making them never competes
   * with a burst of operations for the directory and the CPU), stopping as soon as it is busy
   * again. The caller holds the exclusive lock: the store is writable and its directory there.
   */
  replenish(): void {
    this.busyAt = Date.now();
    if (this.known().length < SPARES_LOW) this.schedule();
  }

  /** Runs fill() once the store has been idle long enough (unless it is already due or running). */
  private schedule(): void {
    if (this.closed || this.timer || this.filling) return;
    this.timer = setTimeout(() => this.fill(), Math.max(0, this.busyAt + SPARES_IDLE_MS - Date.now()));
    this.timer.unref(); // (a process that exits meanwhile just leaves fewer spares)
  }

  private fill(): void {
    this.timer = undefined;
    // Never makes `.spare/` itself (prepare() does, inside a commit): a directory appearing in
    // the state directory between commits would look like a commit to those who follow it by
    // its times (lib/store/changes.ts) or its inotify events.
    if (this.closed || !this.dirThere) return;
    this.filling = (async () => {
      while (!this.closed && this.known().length < SPARES_FILL) {
        if (Date.now() - this.busyAt < SPARES_IDLE_MS) return true; // busy again: later
        const name = this.newName();
        // 'wx': never over another's file. Failing (a full disk, the directory removed) just stops.
        await fs.promises.writeFile(path.join(this.dir, name), '', { mode: 0o600, flag: 'wx' });
        this.names?.push(name);
      }
      return false;
    })()
      .catch(() => false)
      .then((again) => {
        this.filling = undefined;
        if (again) this.schedule(); // (busy again: once it has been idle, not counted from now)
      });
  }

  /** Makes `.spare/` if it is missing; called inside a commit (the exclusive lock held). */
  prepare(): void {
    this.made();
  }

  /** Stops making spares; resolves when none is being made. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.filling;
  }

  /** The spares known, listed from `.spare/` the first time. */
  private known(): string[] {
    if (this.names) return this.names;
    try {
      // Regular files only (d_type, no stat): anything else put there by hand is left alone.
      this.names = fs
        .readdirSync(this.dir, { withFileTypes: true })
        .filter((e) => e.isFile() && !e.name.startsWith('.'))
        .map((e) => e.name);
    } catch {
      this.names = [];
    }
    return this.names;
  }

  /** Makes `.spare/` if it is missing; false when it cannot be made. */
  private made(): boolean {
    if (this.dirThere) return true;
    try {
      fs.mkdirSync(this.dir, { mode: 0o700 });
      this.dirThere = true;
    } catch (e) {
      this.dirThere = (e as { code?: string }).code === 'EEXIST';
    }
    return this.dirThere;
  }

  private newName(): string {
    return `${process.pid}-${Date.now().toString(36)}-${this.serial++}`;
  }
}
