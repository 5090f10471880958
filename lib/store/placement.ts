/**
 * How a {@link FileStore}'s documents reach their files: put in place after a commit point —
 * overwritten where they are when they fit (no allocation: no full disk after the commit point,
 * nothing for the file system's journal to wait for), else written to a temp file beforehand
 * and renamed — collection directories made, and temp files a crashed writer left swept.
 * New documents' temp files and deleted documents' files are recycled (lib/store/spares.ts).
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { COLLECTION, encodeKey, type Op } from './documents';
import { ioError, unlinkQuiet, writeFileSync } from './files';
import { Spares } from './spares';

/** Temp files start with it; encoded keys never start with '.', so it cannot clash with one. */
export const TMP = '.tmp.';

/** Test hook: NSNET_STORE_CRASH_AFTER=prepare|journal|apply kills the process there. @internal */
export function crashPoint(at: 'prepare' | 'journal' | 'apply'): void {
  if (process.env.NSNET_STORE_CRASH_AFTER === at) process.kill(process.pid, 'SIGKILL');
}

/** The documents of one state directory on disk. */
export class Placement {
  readonly spares: Spares;
  /** Collection directories known to be there (made or found by this process). */
  private readonly collections = new Set<string>();

  constructor(private readonly dir: string) {
    this.spares = new Spares(dir);
  }

  /**
   * Writes a new document's temp file (before the commit point: a full disk fails here): a
   * spare file renamed to the temp name and overwritten when there is one, else a new file.
   */
  stage(o: Op): void {
    const tmp = this.tmpOf(o);
    const text = `${o.doc}\n`;
    if (this.spares.take(tmp)) {
      if (this.overwrite(tmp, text)) return;
      unlinkQuiet(tmp); // (a second name: never written through)
    }
    writeFileSync(tmp, text);
  }

  rename(from: string, to: string): void {
    try {
      fs.renameSync(from, to);
    } catch (e) {
      throw ioError(e, 'rename', to);
    }
  }

  /**
   * Whether a put can overwrite its document where it is: the file exists with this one name
   * and holds the new text in the blocks it has (no allocation: no full disk, and nothing for
   * the file system's journal to wait for).
   */
  fitsInPlace(o: Op): boolean {
    const st = fs.statSync(this.fileOf(o), { throwIfNoEntry: false });
    return st !== undefined && st.isFile() && st.nlink === 1 && st.blocks * 512 >= Buffer.byteLength(o.doc!) + 1;
  }

  /** Creates the collection directories `ops` write to; returns those it made. */
  makeCollections(ops: Op[]): string[] {
    const made: string[] = [];
    for (const o of ops) {
      if (o.doc === null || this.collections.has(o.collection)) continue;
      const dir = path.join(this.dir, o.collection);
      try {
        fs.mkdirSync(dir, { mode: 0o700 });
        made.push(dir);
      } catch (e) {
        if ((e as { code?: string }).code !== 'EEXIST') throw ioError(e, 'create', dir);
      }
      this.collections.add(o.collection);
    }
    return made;
  }

  /** Removes collection directories {@link makeCollections} made for a commit that failed (if still empty). */
  unmakeCollections(made: string[]): void {
    for (const d of made) {
      this.collections.delete(path.basename(d));
      try {
        fs.rmdirSync(d);
      } catch {
        /* not empty or refused: an empty collection directory is harmless */
      }
    }
  }

  /**
   * Puts the documents in place (or unlinks them), without syncing: the log keeps them.
   * `staged`: the puts whose temp file is written (renamed into place); the others are
   * overwritten where they are (or, absent or with a second name, written and renamed).
   * Returns the files and directories touched.
   */
  place(ops: Op[], staged: Set<Op>): Set<string> {
    const touched = new Set<string>();
    for (const o of ops) {
      const file = this.fileOf(o);
      const dir = path.dirname(file);
      if (o.doc === null) {
        this.spares.retire(file);
        touched.add(dir);
      } else {
        if (staged.has(o) || !this.overwrite(file, `${o.doc}\n`)) {
          if (!staged.has(o)) this.stage(o);
          this.rename(this.tmpOf(o), file);
          touched.add(dir);
        }
        touched.add(file);
      }
      crashPoint('apply');
    }
    return touched;
  }

  /** Overwrites a document in its file; false when the file is absent or has a second name. */
  overwrite(file: string, text: string): boolean {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r+');
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return false;
      throw ioError(e, 'write', file);
    }
    try {
      const st = fs.fstatSync(fd);
      // A document set aside shares its inode with its `.damaged` name: never written through.
      if (st.nlink !== 1) return false;
      const buf = Buffer.from(text);
      fs.writeSync(fd, buf, 0, buf.length, 0);
      if (st.size > buf.length) fs.ftruncateSync(fd, buf.length);
      return true;
    } catch (e) {
      throw ioError(e, 'write', file);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Removes temp files a crashed writer left (caller holds the exclusive lock). */
  sweep(): void {
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

  fileOf(o: Op): string {
    return path.join(this.dir, o.collection, `${encodeKey(o.key)}.json`);
  }

  tmpOf(o: Op): string {
    return path.join(this.dir, o.collection, `${TMP}${encodeKey(o.key)}.json`);
  }
}
