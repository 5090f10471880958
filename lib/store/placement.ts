/**
 * How a {@link FileStore}'s documents reach their files: put in place after a commit point —
 * overwritten where they are when they fit (no allocation: no full disk after the commit point,
 * nothing for the file system's journal to wait for), else written to a temp file beforehand
 * and renamed — collection directories made, and temp files a crashed writer left swept.
 *
 * Files are recycled (issue 18): a deleted document's file is renamed into `.spare/` rather than
 * unlinked, and a new document's temp file is a spare renamed back and overwritten. Creating a
 * file is the dearest thing a commit did: ext4 takes 0.25 ms for one here, and more the more
 * files were deleted lately (its allocator reads the inode table to skip inodes freed recently:
 * 17 % of a connect's main-thread time, profiled), against 0.03 ms for a rename. Spares sit
 * outside every collection (no reader lists them), at most {@link SPARES_MAX} of them.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { COLLECTION, encodeKey, type Op } from './documents';
import { ioError, unlinkQuiet, writeFileSync } from './files';

/** Temp files start with it; encoded keys never start with '.', so it cannot clash with one. */
export const TMP = '.tmp.';
/** The directory of spare files (see above): not a collection name (it starts with '.'). */
export const SPARE = '.spare';
/** At most this many spare files (4 KiB and an inode each); past it, deleted documents are unlinked. */
export const SPARES_MAX = 256;

/** Test hook: NSNET_STORE_CRASH_AFTER=prepare|journal|apply kills the process there. @internal */
export function crashPoint(at: 'prepare' | 'journal' | 'apply'): void {
  if (process.env.NSNET_STORE_CRASH_AFTER === at) process.kill(process.pid, 'SIGKILL');
}

/** The documents of one state directory on disk. */
export class Placement {
  /** The spares this process knows of (listed once, then kept up to date by its own renames). */
  private spares: string[] | undefined;
  /** Whether `.spare/` was there when last listed. */
  private spareDir = false;
  private serial = 0;

  constructor(private readonly dir: string) {}

  /**
   * Writes a new document's temp file (before the commit point: a full disk fails here): a
   * spare file renamed to the temp name and overwritten when there is one, else a new file.
   */
  stage(o: Op): void {
    const tmp = this.tmpOf(o);
    const text = `${o.doc}\n`;
    if (this.takeSpare(tmp)) {
      if (this.overwrite(tmp, text)) return;
      unlinkQuiet(tmp); // (a second name: never written through)
    }
    writeFileSync(tmp, text);
  }

  /** Renames a spare file to `to`; false when there is none. */
  private takeSpare(to: string): boolean {
    const spares = this.knownSpares(false);
    for (let name = spares.pop(); name !== undefined; name = spares.pop()) {
      try {
        fs.renameSync(path.join(this.dir, SPARE, name), to);
        return true;
      } catch {
        /* taken by another process meanwhile (or refused): the next one, or a new file */
      }
    }
    return false;
  }

  /** Takes a deleted document's file out of its collection: kept as a spare, or unlinked. Absent is fine. */
  private retire(file: string): void {
    const spares = this.knownSpares(true);
    if (spares.length < SPARES_MAX) {
      const name = `${process.pid}-${Date.now().toString(36)}-${this.serial++}`;
      try {
        fs.renameSync(file, path.join(this.dir, SPARE, name));
        spares.push(name);
        return;
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code !== 'ENOENT') throw ioError(e, 'delete', file);
        // The file, or the spare directory, is missing: unlinked below (ENOENT there too is fine).
        if (!fs.existsSync(path.join(this.dir, SPARE))) this.spares = undefined; // (listed, and made, again next time)
      }
    }
    try {
      fs.unlinkSync(file);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw ioError(e, 'delete', file);
    }
  }

  /**
   * The spares, listed from `.spare/` the first time (made then when `make`: the first delete
   * makes it; a store that never deleted anything has none).
   */
  private knownSpares(make: boolean): string[] {
    if (this.spares && (this.spareDir || !make)) return this.spares;
    const dir = path.join(this.dir, SPARE);
    if (make) {
      try {
        fs.mkdirSync(dir, { mode: 0o700 });
      } catch {
        /* there already, or refused: listed (or not) below */
      }
    }
    try {
      this.spares = fs.readdirSync(dir).filter((n) => !n.startsWith('.'));
      this.spareDir = true;
    } catch {
      this.spares = [];
      this.spareDir = false;
    }
    return this.spares;
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
        this.retire(file);
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
