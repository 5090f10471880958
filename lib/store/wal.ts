/**
 * The state store's write-ahead log, `journal.log`: what makes a commit durable with one
 * fdatasync (issue 18), whatever the number of documents it writes.
 *
 * - **Commit**: one record — every put with its whole document, every delete — appended and
 *   fdatasync'ed: the commit point. The documents are then moved into place (written to temp
 *   files before the record, so a full disk fails a commit before its point) without syncing
 *   them: until the next checkpoint the log is what keeps them. Then an "applied" line naming
 *   this boot is appended (not synced).
 * - **Replay**: the log needs one when its last line is not this boot's applied line: a writer
 *   died between its commit point and the end of its apply, or the machine restarted since (the
 *   documents moved but never synced may be lost with the page cache). Every intact record is
 *   applied again, in order — idempotent, records hold whole documents — a torn tail (a record
 *   whose commit never returned: its fdatasync did not finish) is cut off, and a checkpoint
 *   follows. A damaged line followed by intact ones is not a crash's doing: ERR_STORE_CORRUPT,
 *   the file left alone.
 * - **Checkpoint**: once the log passes {@link CHECKPOINT_BYTES}, syncfs(2) of the state
 *   directory's file system makes every document written so far durable, and the log is
 *   truncated to nothing (and that synced).
 *
 * Lines: `R <hash> <json>\n` (hash: the first 16 hex digits of the json's SHA-256; json:
 * `{"ops":[{"collection","key","doc"}…]}`, doc null for a delete) and `A <boot id>\n`.
 * @internal
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { native } from '../native';
import { count } from '../phases';
import { checkCollection, checkKey, corrupt, type Op } from './documents';
import { LOG } from './changes';
import { ioError, syncFile } from './files';

const fdatasync = promisify(fs.fdatasync);

export { LOG };
/** Past this size, a commit checkpoints (2 MiB: about 1,500 connects between syncfs calls). */
export const CHECKPOINT_BYTES = 2 * 1024 * 1024;

/** This boot's id (a machine restart loses what was never synced: the log is replayed then). */
function bootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}
const APPLIED = Buffer.from(`A ${bootId()}\n`);

function hash(json: string): string {
  return createHash('sha256').update(json).digest('hex').slice(0, 16);
}

/** A commit's record appended and synced, still open: {@link WriteAheadLog.applied} closes it. */
export interface Appended {
  fd: number;
  /** The log's size with the record. */
  size: number;
}

/** The log of one state directory. */
export class WriteAheadLog {
  readonly file: string;

  constructor(private readonly dir: string) {
    this.file = path.join(dir, LOG);
  }

  /** Whether the log holds records that may not be applied (see the module comment). Cheap: a few syscalls. */
  needsReplay(): boolean {
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return false;
      throw ioError(e, 'read', this.file);
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size === 0) return false;
      if (size < APPLIED.length) return true;
      const tail = Buffer.allocUnsafe(APPLIED.length);
      fs.readSync(fd, tail, 0, tail.length, size - tail.length);
      return !tail.equals(APPLIED);
    } catch (e) {
      throw ioError(e, 'read', this.file);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Appends a commit's record and waits until it is on disk: the commit point. On failure
   * (a full disk, an I/O error) the record is cut off again and nothing of it stays.
   */
  async append(ops: Op[]): Promise<Appended> {
    const json = `{"ops":[${ops.map((o) => `{"collection":${JSON.stringify(o.collection)},"key":${JSON.stringify(o.key)},"doc":${o.doc ?? 'null'}}`).join(',')}]}`;
    const line = `R ${hash(json)} ${json}\n`;
    let fd: number;
    try {
      fd = fs.openSync(this.file, fs.constants.O_WRONLY | fs.constants.O_APPEND);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw ioError(e, 'open', this.file);
      try {
        fd = fs.openSync(this.file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o600);
      } catch (e2) {
        throw ioError(e2, 'create', this.file);
      }
      try {
        await syncFile(this.dir); // the log's name itself is durable
      } catch (e2) {
        fs.closeSync(fd);
        throw e2;
      }
    }
    let size = -1;
    try {
      size = fs.fstatSync(fd).size;
      fs.writeFileSync(fd, line);
      count('fdatasync');
      await fdatasync(fd);
      return { fd, size: size + Buffer.byteLength(line) };
    } catch (e) {
      if (size >= 0) {
        try {
          fs.ftruncateSync(fd, size);
        } catch {
          /* the next replay cuts a torn tail off */
        }
      }
      fs.closeSync(fd);
      throw ioError(e, 'write', this.file);
    }
  }

  /** Whether the log is due a checkpoint after this commit (then {@link applied}, not {@link markApplied}). */
  due(a: Appended): boolean {
    return a.size >= CHECKPOINT_BYTES;
  }

  /**
   * The record is applied: appends this boot's applied line (not synced) and closes the log.
   * Never throws: a log left unmarked is replayed by the next operation.
   */
  markApplied(a: Appended): void {
    try {
      fs.writeSync(a.fd, APPLIED);
    } catch {
      /* the log still says "not applied": the next operation replays it */
    } finally {
      fs.closeSync(a.fd);
    }
  }

  /** {@link markApplied}, checkpointing first when {@link due}. Never rejects. */
  async applied(a: Appended): Promise<void> {
    if (this.due(a)) {
      try {
        await this.checkpoint(a.fd);
        fs.closeSync(a.fd);
        return;
      } catch {
        /* not checkpointed: the log keeps the documents, and the next commit tries again */
      }
    }
    this.markApplied(a);
  }

  /**
   * Every intact record's operations, in order, and where the intact part ends. A torn tail is
   * left out; damage before an intact record is ERR_STORE_CORRUPT. Undefined when there is no log.
   */
  read(): { records: Op[][]; end: number; size: number } | undefined {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(this.file);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return undefined;
      throw ioError(e, 'read', this.file);
    }
    const records: Op[][] = [];
    let at = 0;
    let torn = -1;
    while (at < buf.length) {
      const nl = buf.indexOf(10, at);
      const ops = nl < 0 ? undefined : parseLine(buf.toString('utf8', at, nl));
      if (ops === undefined) {
        if (torn < 0) torn = at;
      } else if (torn >= 0) {
        throw corrupt(this.file, `damaged at byte ${torn}, before intact records (not a crash's doing)`);
      } else if (ops !== null) {
        records.push(ops);
      }
      at = nl < 0 ? buf.length : nl + 1;
    }
    return { records, end: torn < 0 ? buf.length : torn, size: buf.length };
  }

  /**
   * Replays the log (the caller holds the exclusive lock): `apply` moves each record's documents
   * into place, in order; then a checkpoint empties the log.
   */
  async replay(apply: (ops: Op[]) => void): Promise<void> {
    const log = this.read();
    if (!log) return;
    for (const ops of log.records) apply(ops);
    const fd = openForWrite(this.file);
    try {
      await this.checkpoint(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Makes every document on the state directory's file system durable, then empties the log. */
  private async checkpoint(fd: number): Promise<void> {
    count('syncfs');
    try {
      await native.syncfs(fd);
    } catch (e) {
      throw ioError(e, 'sync', this.dir);
    }
    try {
      fs.ftruncateSync(fd, 0);
      count('fdatasync');
      await fdatasync(fd);
    } catch (e) {
      throw ioError(e, 'truncate', this.file);
    }
  }
}

function openForWrite(file: string): number {
  try {
    return fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND);
  } catch (e) {
    throw ioError(e, 'open', file);
  }
}

/** A line's operations; null for an applied line; undefined for a damaged (or torn) line. */
function parseLine(line: string): Op[] | null | undefined {
  if (line.startsWith('A ')) return null;
  if (!line.startsWith('R ') || line.length < 20 || line[18] !== ' ') return undefined;
  const json = line.slice(19);
  if (hash(json) !== line.slice(2, 18)) return undefined;
  try {
    const j = JSON.parse(json) as { ops?: unknown };
    if (!Array.isArray(j.ops)) return undefined;
    return j.ops.map((o: { collection: unknown; key: unknown; doc: unknown }) => {
      if (o.doc !== null && (typeof o.doc !== 'object' || (o.doc as { key?: unknown }).key !== o.key)) throw new Error('malformed');
      return { collection: checkCollection(o.collection), key: checkKey(o.key), doc: o.doc === null ? null : JSON.stringify(o.doc) };
    });
  } catch {
    return undefined;
  }
}
