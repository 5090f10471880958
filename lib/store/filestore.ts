/**
 * FileStore: JSON documents in a state directory, shared safely by several processes.
 *
 * Layout: `dir/meta.json` (`{"format":1}`), `dir/.lock` (the flock; it also holds the log's
 * position), `dir/<collection>/<key>.json` holding `{"key":…,"value":…}`, `dir/journal.log`,
 * the write-ahead log (lib/store/wal.ts), and `dir/.spare/`, deleted documents' files kept for
 * new ones (lib/store/spares.ts).
 *
 * Commit protocol (crash-safe across documents, one fdatasync per commit), all under the
 * exclusive flock:
 * 1. new documents (and any that would need more room than its file has) are written to temp
 *    files beside their place (a full disk fails here);
 * 2. one record — every put with its full document, every delete — is written to the log and
 *    fdatasync'ed: the commit point;
 * 3. the documents are put in place — overwritten where they are, or renamed from their temp
 *    file — or unlinked, none of them synced: the log keeps them until its next checkpoint (a
 *    syncfs about every megabyte of log); the log's position says "applied", the lock is
 *    released, and `update()` resolves.
 * A log whose position is not "applied" (a writer killed after its commit point, or a machine
 * restarted since) is replayed, idempotently, before any read or update, so a process killed at
 * any moment leaves the store before or after a transaction, never between. Readers hold the
 * shared lock, so they never see a document being overwritten.
 * (`dir/journal.json` is the journal of earlier nsnet versions, which synced every document:
 * one that a crashed older version left is still replayed.)
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NsnetError, invalid } from '../errors';
import { FileLock } from './flock';
import { phase } from '../phases';
import { dropAsides, linkAsides, type Aside } from './aside';
import { commitAhead } from './ahead';
import { Snapshot, corrupt, type Op } from './documents';
import { ioError, readText, syncFile, unlinkQuiet, writeFile } from './files';
import { JOURNAL, legacyJournal } from './legacy';
import { Placement, TMP, crashPoint } from './placement';
import { stampOf, watchDir, watchGenerations, type StoreStamp } from './changes';
import { WriteAheadLog, parsePosition, type Appended } from './wal';
import type { Store, StoreChanges, StoreTx, StoreView } from './types';
import type { NativeChangeWatch } from '../native';

const FORMAT = 1;
const META = 'meta.json';
const LOCK = '.lock';

/** Options of {@link FileStore.open}. */
export interface FileStoreOptions {
  /** The state directory (created with mode 0700 when missing). */
  dir: string;
}

/** Marks the callbacks of running operations, to refuse a nested call (it would deadlock). */
const running = new AsyncLocalStorage<{ dir: string; active: boolean }>();

/** The file-backed {@link Store}. Create it with {@link FileStore.open}. */
export class FileStore implements Store, StoreChanges {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly inflight = new Set<Promise<unknown>>();
  private closed = false;
  /** open() found the file system read-only: the lock file may never have existed (see lock()). */
  private readOnly = false;
  /** The directory open() made sure of, as device, inode and birth time: see lock() and dirIdOf(). */
  private dirId = '';
  private readonly wal: WriteAheadLog;
  private files: Placement;

  private constructor(
    /** The absolute state directory. */
    readonly dir: string,
  ) {
    this.wal = new WriteAheadLog(dir);
    this.files = new Placement(dir);
  }

  /**
   * Opens (creating if needed) the store in `opts.dir`: checks its format (ERR_STORE_FORMAT for
   * an unknown one), replays a journal a crashed writer left, and removes stale temp files.
   */
  static async open(opts: FileStoreOptions): Promise<FileStore> {
    if (opts === null || typeof opts !== 'object' || typeof opts.dir !== 'string' || opts.dir === '' || opts.dir.includes('\0'))
      throw invalid('ERR_INVALID_ARGUMENT', 'FileStore.open needs { dir: string }', { value: opts?.dir });
    const store = new FileStore(path.resolve(opts.dir));
    try {
      // Not recursive first: a recursive mkdir reports ENOENT where the truth is EROFS.
      fs.mkdirSync(store.dir, { mode: 0o700 });
    } catch (e) {
      const code = (e as { code?: string }).code;
      try {
        if (code === 'ENOENT') fs.mkdirSync(store.dir, { recursive: true, mode: 0o700 });
        else if (code !== 'EEXIST') throw e;
      } catch (e2) {
        throw ioError(e2, 'create', store.dir);
      }
    }
    try {
      store.dirId = dirIdOf(store.dir) ?? '';
    } catch (e) {
      throw ioError(e, 'stat', store.dir);
    }
    let lock: FileLock | undefined;
    try {
      lock = await store.lock(true, true);
    } catch (e) {
      // A read-only file system: no writer can exist, so reads need no lock (updates fail).
      if ((e as NsnetError).details?.errno !== 'EROFS' || readText(path.join(store.dir, META)) === null) throw e;
      store.readOnly = true;
    }
    try {
      const metaFile = path.join(store.dir, META);
      const text = readText(metaFile);
      if (text === null) {
        await writeFile(path.join(store.dir, TMP + META), `${JSON.stringify({ format: FORMAT })}\n`, true);
        store.files.rename(path.join(store.dir, TMP + META), metaFile);
        await syncFile(store.dir);
      } else {
        let meta: { format?: unknown };
        try {
          meta = JSON.parse(text);
        } catch {
          throw corrupt(metaFile, 'not valid JSON');
        }
        if (meta?.format !== FORMAT)
          throw new NsnetError('ERR_STORE_FORMAT', `state store ${store.dir} has format ${JSON.stringify(meta?.format)}; this nsnet reads format ${FORMAT}`, {
            format: meta?.format,
            dir: store.dir,
          });
      }
      if (lock) {
        await store.replay(lock);
        store.files.sweep();
      } else {
        legacyJournal(store.dir); // a corrupt journal is reported now, as on a writable store
      }
    } finally {
      lock?.release();
    }
    return store;
  }

  /** Runs `fn` on a consistent snapshot under a shared lock. See {@link Store.read}. */
  read<T>(fn: (view: StoreView) => T | Promise<T>): Promise<T> {
    return this.track(async () => {
      let lock: FileLock | undefined;
      try {
        lock = await this.lock(false);
      } catch (e) {
        // A read-only file system has no writer to exclude: read without the lock.
        if ((e as NsnetError).details?.errno !== 'EROFS') throw e;
      }
      try {
        const view = new Snapshot(this.dir, false);
        if (this.pending(lock)) {
          // A crashed writer's journal: replay it under the exclusive lock, or read through it.
          if (lock) {
            lock.release();
            lock = undefined;
            lock = await this.lock(true);
          }
          try {
            if (lock) await this.replay(lock);
          } catch (e) {
            if ((e as NsnetError).code !== 'ERR_STORE_IO') throw e;
          }
          // Still there (read-only, or the replay failed): read through it.
          if (this.pending(lock)) {
            view.overlay(legacyJournal(this.dir) ?? []);
            for (const ops of this.wal.read()?.records ?? []) view.overlay(ops);
          }
        }
        return await this.call(fn, view);
      } finally {
        lock?.release();
        phase('store: read');
      }
    });
  }

  /**
   * Runs `fn` in an exclusive all-or-nothing transaction. See {@link Store.update}. It resolves
   * once its record is on disk (the commit point) and its documents are in place; the rare
   * slow rest (a checkpoint, removing the first name of documents set aside) finishes in the
   * background while the lock is still held, so every later read or update sees it.
   */
  update<T>(fn: (tx: StoreTx) => T | Promise<T>): Promise<T> {
    return this.track(() => {
      const step = this.queue.then(() => this.transact(fn));
      this.queue = step.then((s) => s.applied).catch(() => undefined);
      return step.then((s) => s.result);
    });
  }

  /**
   * Resolves when every update started so far is fully applied: documents in place, the log
   * marked applied (or checkpointed), lock released. (Readers never need this: they take the lock.)
   */
  async settled(): Promise<void> {
    await this.queue;
  }

  /**
   * A cheap, synchronous stamp of the committed state, for readers that follow the store from
   * another process (see lib/store/changes.ts): compare it with the one taken before the last read.
   */
  stamp(): StoreStamp {
    return stampOf(this.dir);
  }

  /** Calls `onChange` soon after commits (best effort: pair it with {@link stamp}). */
  watch(onChange: () => void): { close(): void } {
    return watchDir(this.dir, onChange);
  }

  /** A change counter of the state directory (see {@link watchGenerations}); the caller closes it. */
  generations(): NativeChangeWatch | undefined {
    return watchGenerations(this.dir);
  }

  /** Waits for the operations in flight; later calls fail with ERR_STORE_CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inflight]);
    await this.queue;
    await this.files.spares.close();
  }

  private async transact<T>(fn: (tx: StoreTx) => T | Promise<T>): Promise<{ result: T; applied: Promise<void> }> {
    const lock = await this.lock(true);
    let applied: Promise<void> | undefined;
    try {
      await this.replay(lock);
      phase('store: lock');
      const tx = new Snapshot(this.dir, true);
      const ahead = commitAhead(
        tx,
        (ops) => this.commit(lock, ops),
        (e) =>
          process.emitWarning(`nsnet state store ${this.dir}: a failed transaction's writes could not be taken back: ${e.message}`, {
            code: 'NSNET_STORE_REVERT',
          }),
      );
      let result: T;
      try {
        result = await this.call(fn, tx);
      } catch (e) {
        await ahead.revert();
        throw e;
      }
      // Committed ahead (the record durable while fn went on): what fn wrote after, if anything.
      const rest = await ahead.settle();
      applied = (await this.commit(lock, rest, tx.asideList())).applied;
      phase('store: commit');
      return { result, applied: applied?.then(() => lock.release()).catch(() => undefined) ?? Promise.resolve() };
    } finally {
      if (!applied) lock.release();
    }
  }

  private track<T>(op: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new NsnetError('ERR_STORE_CLOSED', `state store ${this.dir} is closed`));
    const ctx = running.getStore();
    if (ctx?.active && ctx.dir === this.dir)
      return Promise.reject(
        new NsnetError(
          'ERR_STORE_NESTED',
          'a store read/update was started inside another one on the same store (it would deadlock); use the view or transaction you were given',
        ),
      );
    const p = op();
    this.inflight.add(p);
    const forget = (): void => void this.inflight.delete(p);
    p.then(forget, forget);
    return p;
  }

  private async call<T>(fn: (view: Snapshot) => T | Promise<T>, view: Snapshot): Promise<T> {
    const ctx = { dir: this.dir, active: true };
    try {
      return await running.run(ctx, () => fn(view));
    } finally {
      ctx.active = false;
      view.done = true;
    }
  }

  /**
   * The store's lock. Only open() creates the lock file in the directory it opened: once a
   * store is open, a missing lock file in that same directory means it is being removed (rm -rf
   * of a state directory a daemon still follows), and making the file again would leave a
   * directory the remover cannot remove — and a lock nobody else shares. So that fails
   * (ERR_STORE_IO, `details.removed`), and nothing is written there again. A new directory at
   * the same path (removed, then made again: `rm -rf` and a fresh start) is a new store: used
   * as open() would, lock file and all.
   */
  private async lock(exclusive: boolean, create = false): Promise<FileLock> {
    const file = path.join(this.dir, LOCK);
    // On a read-only file system a missing lock file is EROFS, as ever (readers go on without).
    if (this.readOnly) create = true;
    try {
      return await FileLock.acquire(file, { exclusive, create });
    } catch (e) {
      const err = ioError(e, 'lock', file);
      if (create || err.details?.errno !== 'ENOENT') throw err;
    }
    let now: string | undefined;
    try {
      now = dirIdOf(this.dir);
    } catch (e) {
      throw ioError(e, 'stat', this.dir);
    }
    if (now !== undefined && now !== this.dirId) {
      this.dirId = now;
      // A new directory: nothing known of the old one's files holds (its collections, its spares).
      void this.files.spares.close();
      this.files = new Placement(this.dir);
      return this.lock(exclusive, true);
    }
    throw new NsnetError(
      'ERR_STORE_IO',
      now === undefined
        ? `state store ${this.dir} was removed while in use: open it again to use the directory anew`
        : `state store ${this.dir} is being removed (its ${LOCK} is gone): open it again to use the directory anew`,
      { errno: 'ENOENT', file, dir: this.dir, removed: true },
    );
  }

  /**
   * Commits `ops`: new documents, and those that outgrow their file or have a second name,
   * go to temp files (a full disk fails here, changing nothing); the record is written to the
   * log and synced — the commit point — and the documents are put in place (the others
   * overwritten where they are: see lib/store/wal.ts). The rare slow rest (a checkpoint,
   * dropping the first names of documents set aside) is `applied`, which never rejects.
   */
  private async commit(lock: FileLock, ops: Op[], asides: Aside[] = []): Promise<{ applied?: Promise<void> }> {
    if (ops.length === 0 && asides.length === 0) return {};
    // Damaged documents set aside get their second name first (synced): neither the put or
    // delete that replaces them nor a crash anywhere after can lose their bytes.
    const linked = await linkAsides(asides);
    if (ops.length === 0) {
      // Only documents without a key to journal (digest or foreign names): unlinked now; a
      // crash in between leaves both names, and the next repair finds the same file again.
      await dropAsides(asides);
      return {};
    }
    const temps: string[] = [...linked];
    const staged = new Set<Op>();
    const made: string[] = [];
    let appended: Appended;
    try {
      made.push(...this.files.makeCollections(ops));
      this.files.spares.prepare();
      for (const o of ops) {
        if (o.doc === null || this.files.fitsInPlace(o)) continue;
        temps.push(this.files.tmpOf(o));
        this.files.stage(o);
        staged.add(o);
      }
      crashPoint('prepare');
      appended = await this.wal.append(lock, this.wal.position(lock) ?? { gen: 1, end: 0, applied: true }, ops);
    } catch (e) {
      for (const t of temps) unlinkQuiet(t);
      this.files.unmakeCollections(made);
      throw e;
    }
    // Decided: every later reader replays the log before reading, until it says applied.
    crashPoint('journal');
    let placed = false;
    try {
      this.files.place(ops, staged);
      placed = true;
    } catch (e) {
      // Not applied: the next read or update replays the log (a read can also read through
      // it), so the outcome stands.
      process.emitWarning(`nsnet state store ${this.dir}: committed; applying it is left to the next operation: ${(e as Error).message}`, {
        code: 'NSNET_STORE_DEFERRED',
      });
    }
    if (!placed) {
      fs.closeSync(appended.fd);
      return {};
    }
    // New documents' files for the next commits, made in the background when few are left.
    this.files.spares.replenish();
    // The common case is done here, so the lock is free when update() resolves.
    if (asides.length === 0 && !this.wal.due(appended)) {
      this.wal.markApplied(lock, appended);
      return {};
    }
    return {
      applied: dropAsides(asides)
        .catch(() => undefined)
        .then(() => this.wal.applied(lock, appended)),
    };
  }

  /**
   * Whether a crashed writer left something to replay (a legacy journal, or a log not applied).
   * Without the lock (a read-only file system), the log's position is read from the lock file.
   */
  private pending(lock: FileLock | undefined): boolean {
    if (fs.existsSync(path.join(this.dir, JOURNAL))) return true;
    if (lock) return this.wal.position(lock) === undefined;
    return fs.existsSync(this.wal.file) && !parsePosition(readText(path.join(this.dir, LOCK)) ?? '')?.applied;
  }

  /**
   * Replays what a crashed writer left (idempotent): a legacy journal (its documents synced
   * and the journal removed, as the version that wrote it did), then the log. Caller holds the
   * exclusive lock.
   */
  private async replay(lock: FileLock): Promise<void> {
    const ops = legacyJournal(this.dir);
    if (ops) {
      if (this.files.makeCollections(ops).length > 0) await syncFile(this.dir);
      await Promise.all([...this.files.place(ops, new Set())].map(syncFile));
      try {
        fs.unlinkSync(path.join(this.dir, JOURNAL));
      } catch (e) {
        throw ioError(e, 'delete', path.join(this.dir, JOURNAL));
      }
    }
    if (this.wal.position(lock) !== undefined) return;
    await this.wal.replay(lock, (record) => {
      this.files.makeCollections(record);
      this.files.place(record, new Set());
    });
  }
}

/**
 * A directory's identity, or undefined when it does not exist: device, inode and birth time. The
 * inode alone is not enough — a directory made right after another was removed often gets the
 * freed inode back — and the birth time (statx; 0 where a file system keeps none) tells them
 * apart unless both were made in the same tick of the file system's clock: then lock() takes
 * the new one for the old one being removed, and fails (open the store again), never worse.
 */
function dirIdOf(dir: string): string | undefined {
  const st = fs.statSync(dir, { bigint: true, throwIfNoEntry: false });
  return st === undefined ? undefined : `${st.dev}:${st.ino}:${st.birthtimeNs}`;
}
