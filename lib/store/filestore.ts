/**
 * FileStore: JSON documents in a state directory, shared safely by several processes.
 *
 * Layout: `dir/meta.json` (`{"format":1}`), `dir/.lock` (the flock), `dir/<collection>/<key>.json`
 * holding `{"key":…,"value":…}`, and `dir/journal.log`, the write-ahead log (lib/store/wal.ts).
 *
 * Commit protocol (crash-safe across documents, one fdatasync per commit), all under the
 * exclusive flock:
 * 1. each new document is written to a temp file beside its place (a full disk fails here);
 * 2. one record — every put with its full document, every delete — is appended to the log and
 *    fdatasync'ed: the commit point;
 * 3. the documents are renamed into place (or unlinked), not synced: the log keeps them until
 *    its next checkpoint (a syncfs, about every 2 MiB of log); the log is marked applied, the
 *    lock released, and `update()` resolves.
 * A log that is not marked applied (a writer killed after its commit point, or a machine
 * restarted since) is replayed, idempotently, before any read or update, so a process killed
 * at any moment leaves the store before or after a transaction, never between.
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
import { COLLECTION, Snapshot, checkCollection, checkKey, corrupt, encodeKey, type Op } from './documents';
import { ioError, readText, syncFile, unlinkQuiet, writeFile, writeFileSync } from './files';
import { stampOf, watchDir, type StoreStamp } from './changes';
import { WriteAheadLog, type Appended } from './wal';
import type { Store, StoreChanges, StoreTx, StoreView } from './types';

const FORMAT = 1;
const META = 'meta.json';
const JOURNAL = 'journal.json';
const LOCK = '.lock';
/** Temp files start with it; encoded keys never start with '.', so it cannot clash with one. */
const TMP = '.tmp.';

/** Options of {@link FileStore.open}. */
export interface FileStoreOptions {
  /** The state directory (created with mode 0700 when missing). */
  dir: string;
}

/** Marks the callbacks of running operations, to refuse a nested call (it would deadlock). */
const running = new AsyncLocalStorage<{ dir: string; active: boolean }>();

/** Test hook: NSNET_STORE_CRASH_AFTER=prepare|journal|apply kills the process there. @internal */
function crashPoint(at: 'prepare' | 'journal' | 'apply'): void {
  if (process.env.NSNET_STORE_CRASH_AFTER === at) process.kill(process.pid, 'SIGKILL');
}

/** The file-backed {@link Store}. Create it with {@link FileStore.open}. */
export class FileStore implements Store, StoreChanges {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly inflight = new Set<Promise<unknown>>();
  private closed = false;
  private readonly wal: WriteAheadLog;

  private constructor(
    /** The absolute state directory. */
    readonly dir: string,
  ) {
    this.wal = new WriteAheadLog(dir);
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
    let lock: FileLock | undefined;
    try {
      lock = await store.lock(true);
    } catch (e) {
      // A read-only file system: no writer can exist, so reads need no lock (updates fail).
      if ((e as NsnetError).details?.errno !== 'EROFS' || readText(path.join(store.dir, META)) === null) throw e;
    }
    try {
      const metaFile = path.join(store.dir, META);
      const text = readText(metaFile);
      if (text === null) {
        await writeFile(path.join(store.dir, TMP + META), `${JSON.stringify({ format: FORMAT })}\n`, true);
        store.rename(path.join(store.dir, TMP + META), metaFile);
        await syncFile(store.dir);
      } else {
        let meta: { format?: unknown };
        try {
          meta = JSON.parse(text);
        } catch {
          throw corrupt(metaFile, 'not valid JSON');
        }
        if (meta?.format !== FORMAT)
          throw new NsnetError('ERR_STORE_FORMAT', `state store ${store.dir} has format ${JSON.stringify(meta?.format)}; this nsnet reads format ${FORMAT}`, { format: meta?.format, dir: store.dir });
      }
      if (lock) {
        await store.replay();
        store.sweep();
      } else {
        // A corrupt journal is reported now, as on a writable store.
        store.journalOps();
        store.wal.read();
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
        if (this.pending()) {
          // A crashed writer's journal: replay it under the exclusive lock, or read through it.
          if (lock) {
            lock.release();
            lock = undefined;
            lock = await this.lock(true);
          }
          try {
            if (lock) await this.replay();
          } catch (e) {
            if ((e as NsnetError).code !== 'ERR_STORE_IO') throw e;
          }
          // Still there (read-only, or the replay failed): read through it.
          view.overlay(this.journalOps() ?? []);
          if (this.wal.needsReplay()) for (const ops of this.wal.read()?.records ?? []) view.overlay(ops);
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

  /** Waits for the operations in flight; later calls fail with ERR_STORE_CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inflight]);
    await this.queue;
  }

  private async transact<T>(fn: (tx: StoreTx) => T | Promise<T>): Promise<{ result: T; applied: Promise<void> }> {
    const lock = await this.lock(true);
    let applied: Promise<void> | undefined;
    try {
      await this.replay();
      phase('store: lock');
      const tx = new Snapshot(this.dir, true);
      const result = await this.call(fn, tx);
      applied = (await this.commit(tx.ops(), tx.asideList())).applied;
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
      return Promise.reject(new NsnetError('ERR_STORE_NESTED', 'a store read/update was started inside another one on the same store (it would deadlock); use the view or transaction you were given'));
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

  private async lock(exclusive: boolean): Promise<FileLock> {
    try {
      return await FileLock.acquire(path.join(this.dir, LOCK), { exclusive });
    } catch (e) {
      throw ioError(e, 'lock', path.join(this.dir, LOCK));
    }
  }

  private rename(from: string, to: string): void {
    try {
      fs.renameSync(from, to);
    } catch (e) {
      throw ioError(e, 'rename', to);
    }
  }

  /**
   * Commits `ops`: the documents go to temp files (a full disk fails here, changing nothing),
   * the record is appended to the log and synced — the commit point — and the documents are
   * moved into place and the log marked applied. The rare slow rest (a checkpoint, dropping
   * the first names of documents set aside) is `applied`, which never rejects.
   */
  private async commit(ops: Op[], asides: Aside[] = []): Promise<{ applied?: Promise<void> }> {
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
    const made: string[] = [];
    let appended: Appended;
    try {
      made.push(...this.makeCollections(ops));
      for (const o of ops) {
        if (o.doc === null) continue;
        temps.push(this.tmpOf(o));
        writeFileSync(this.tmpOf(o), `${o.doc}\n`);
      }
      crashPoint('prepare');
      appended = await this.wal.append(ops);
    } catch (e) {
      for (const t of temps) unlinkQuiet(t);
      for (const d of made) {
        try {
          fs.rmdirSync(d);
        } catch {
          /* not empty or refused: an empty collection directory is harmless */
        }
      }
      throw e;
    }
    // Decided: every later reader replays the log before reading, until it is marked applied.
    crashPoint('journal');
    let placed = false;
    try {
      this.place(ops, true);
      placed = true;
    } catch (e) {
      // Not applied: the next read or update replays the log (a read can also read through
      // it), so the outcome stands.
      process.emitWarning(`nsnet state store ${this.dir}: committed; applying it is left to the next operation: ${(e as Error).message}`, { code: 'NSNET_STORE_DEFERRED' });
    }
    if (!placed) {
      fs.closeSync(appended.fd);
      return {};
    }
    // The common case is done here, so the lock is free when update() resolves.
    if (asides.length === 0 && !this.wal.due(appended)) {
      this.wal.markApplied(appended);
      return {};
    }
    return { applied: dropAsides(asides).catch(() => undefined).then(() => this.wal.applied(appended)) };
  }

  /** Creates the collection directories `ops` write to; returns those it made. */
  private makeCollections(ops: Op[]): string[] {
    const made: string[] = [];
    for (const dir of new Set(ops.filter((o) => o.doc !== null).map((o) => path.join(this.dir, o.collection)))) {
      try {
        fs.mkdirSync(dir, { mode: 0o700 });
        made.push(dir);
      } catch (e) {
        if ((e as { code?: string }).code !== 'EEXIST') throw ioError(e, 'create', dir);
      }
    }
    return made;
  }

  /**
   * Moves the documents into place (or unlinks them), without syncing: the log keeps them.
   * `prepared`: the temp files are already written. Returns the files and directories touched.
   */
  private place(ops: Op[], prepared: boolean): Set<string> {
    const touched = new Set<string>();
    for (const o of ops) {
      const dir = path.join(this.dir, o.collection);
      const file = path.join(dir, `${encodeKey(o.key)}.json`);
      if (o.doc !== null) {
        if (!prepared) writeFileSync(this.tmpOf(o), `${o.doc}\n`);
        this.rename(this.tmpOf(o), file);
        touched.add(file);
        touched.add(dir);
      } else {
        try {
          fs.unlinkSync(file);
          touched.add(dir);
        } catch (e) {
          if ((e as { code?: string }).code !== 'ENOENT') throw ioError(e, 'delete', file);
        }
      }
      crashPoint('apply');
    }
    return touched;
  }

  /** Whether a crashed writer left something to replay (a legacy journal, or an unapplied log). */
  private pending(): boolean {
    return fs.existsSync(path.join(this.dir, JOURNAL)) || this.wal.needsReplay();
  }

  /**
   * Replays what a crashed writer left (idempotent): a legacy journal (its documents synced
   * and the journal removed, as the version that wrote it did), then the log. Caller holds the
   * exclusive lock.
   */
  private async replay(): Promise<void> {
    const ops = this.journalOps();
    if (ops) {
      if (this.makeCollections(ops).length > 0) await syncFile(this.dir);
      await Promise.all([...this.place(ops, false)].map(syncFile));
      try {
        fs.unlinkSync(path.join(this.dir, JOURNAL));
      } catch (e) {
        throw ioError(e, 'delete', path.join(this.dir, JOURNAL));
      }
    }
    if (!this.wal.needsReplay()) return;
    await this.wal.replay((record) => {
      this.makeCollections(record);
      this.place(record, false);
    });
  }

  /** The leftover journal's operations, or undefined when there is none. */
  private journalOps(): Op[] | undefined {
    const file = path.join(this.dir, JOURNAL);
    const text = readText(file);
    if (text === null) return undefined;
    let j: { format?: unknown; ops?: unknown };
    try {
      j = JSON.parse(text);
    } catch {
      throw corrupt(file, 'not valid JSON (truncated?)');
    }
    if (j?.format !== FORMAT || !Array.isArray(j.ops)) throw corrupt(file, 'not an nsnet journal');
    return j.ops.map((o: { collection?: unknown; key?: unknown; doc?: { key?: unknown; value?: unknown } | null }) => {
      let ok: boolean;
      try {
        checkCollection(o?.collection);
        checkKey(o?.key);
        ok = o.doc === null || (typeof o.doc === 'object' && o.doc?.key === o.key && 'value' in o.doc);
      } catch {
        ok = false;
      }
      if (!ok) throw corrupt(file, 'it holds a malformed operation');
      return { collection: o.collection as string, key: o.key as string, doc: o.doc === null ? null : JSON.stringify(o.doc) };
    });
  }

  /** Removes temp files a crashed writer left (caller holds the exclusive lock). */
  private sweep(): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (e) {
      throw ioError(e, 'list', this.dir);
    }
    for (const name of names) {
      const p = path.join(this.dir, name);
      if (name.startsWith(TMP)) unlinkQuiet(p);
      else if (COLLECTION.test(name)) {
        let names: string[] = [];
        try {
          names = fs.readdirSync(p);
        } catch {
          /* not a directory */
        }
        for (const n of names) if (n.startsWith(TMP)) unlinkQuiet(path.join(p, n));
      }
    }
  }

  private tmpOf(o: Op): string {
    return path.join(this.dir, o.collection, `${TMP}${encodeKey(o.key)}.json`);
  }
}
