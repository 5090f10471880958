/**
 * The state store's write-ahead log, `journal.log`: what makes a commit durable with one
 * fdatasync (issue 18), whatever the number of documents it writes.
 *
 * - **Commit**: one record — every put with its whole document, every delete — written to the
 *   log and fdatasync'ed: the commit point. The documents are then put in place without being
 *   synced: until the next checkpoint the log is what keeps them.
 * - **A ring**: records are written one after another from offset 0 and, at a checkpoint, from
 *   0 again with the next generation number; the file keeps its size. On ext4 an fdatasync that
 *   neither extends nor allocates (overwriting blocks already written) needs no journal commit:
 *   it does not wait for the metadata of the documents (created, renamed, unlinked), which an
 *   appended log — one journal commit per fdatasync, carrying every change since the last one —
 *   measured at 3–9 ms here against 0.2–0.3 ms. A new log is filled with zeros once (a full
 *   disk: it grows by its records instead, for its first lap).
 * - **Position**: where the next record goes, its generation and whether the last record is
 *   applied live in the store's lock file (`.lock`, read and written under the flock, not
 *   synced), tagged with this boot's id.
 * - **Replay**: needed when the position is not "applied" for this boot: a writer died between
 *   its commit point and the end of its apply, or the machine restarted (documents put in place
 *   but never synced may be lost with the page cache). The records of the current generation —
 *   read from offset 0 while intact and of the generation of the first — are applied again in
 *   order (idempotent: records hold whole documents; a torn last record is a commit that never
 *   returned), and a checkpoint follows.
 * - **Checkpoint**: past {@link RING_BYTES}, syncfs(2) of the state directory's file system
 *   makes every document written so far durable; the next record starts a new generation at 0.
 *   A record of the old generation read after a crash is applied over documents that already
 *   hold its effect: the result is the same.
 *
 * Records: `R <generation> <hash> <json>\n` (hash: the first 16 hex digits of the SHA-256 of
 * `<generation> <json>`; json: `{"ops":[{"collection","key","doc"}…]}`, doc null for a delete).
 * @internal
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { native } from '../native';
import { count } from '../phases';
import { LOG } from './changes';
import { checkCollection, checkKey, type Op } from './documents';
import { ioError, syncFile } from './files';
import type { FileLock } from './flock';

export { LOG };

const fdatasync = promisify(fs.fdatasync);

/** The ring's size: a checkpoint when the next record would pass it (about 600 connects). */
export const RING_BYTES = 1024 * 1024;
/** A commit that leaves less than this checkpoints after its commit point, off the next one's path. */
const RING_RESERVE = 64 * 1024;
const STATE = 'nsnet-wal';
const STATE_BYTES = 128;

/** This boot's id (a machine restart loses what was never synced: the log is replayed then). */
function bootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}
const BOOT = bootId();

/** Where the log stands (see the module comment). */
export interface Position {
  gen: number;
  /** Where the next record goes. */
  end: number;
  /** The last record is applied (its documents are in place). */
  applied: boolean;
}

/** The position as the lock file's content holds it, for this boot; undefined when unknown. */
export function parsePosition(text: string): Position | undefined {
  const m = /^nsnet-wal (\S+) (\d+) (\d+) (applied|pending)/u.exec(text);
  if (!m || m[1] !== BOOT) return undefined;
  return { gen: Number(m[2]), end: Number(m[3]), applied: m[4] === 'applied' };
}

function formatPosition(p: Position): string {
  return `${STATE} ${BOOT} ${p.gen} ${p.end} ${p.applied ? 'applied' : 'pending'}\n`.padEnd(STATE_BYTES, ' ');
}

function hash(gen: number, json: string): string {
  return createHash('sha256').update(`${gen} ${json}`).digest('hex').slice(0, 16);
}

/** A commit's record written and synced, the log still open: {@link WriteAheadLog.applied} closes it. */
export interface Appended {
  fd: number;
  /** The position after the record (not yet applied). */
  at: Position;
}

/** The log of one state directory. */
export class WriteAheadLog {
  readonly file: string;

  constructor(private readonly dir: string) {
    this.file = path.join(dir, LOG);
  }

  /**
   * The log's position from the lock, or undefined when the log may hold records not applied
   * (see the module comment). A store without a log has nothing to replay.
   */
  position(lock: FileLock): Position | undefined {
    const p = parsePosition(lock.readContent());
    if (p) return p.applied ? p : undefined;
    return fs.existsSync(this.file) ? undefined : { gen: 1, end: 0, applied: true };
  }

  /**
   * Writes a commit's record and waits until it is on disk: the commit point. The position
   * says "pending" first, so a writer that dies from here on leaves the log to be replayed. On
   * failure (a full disk, an I/O error) nothing of the record counts: the position is back.
   */
  async append(lock: FileLock, from: Position, ops: Op[]): Promise<Appended> {
    const json = `{"ops":[${ops.map((o) => `{"collection":${JSON.stringify(o.collection)},"key":${JSON.stringify(o.key)},"doc":${o.doc ?? 'null'}}`).join(',')}]}`;
    const fd = await this.open();
    if (from.end > 0 && from.end + json.length + 40 > RING_BYTES) {
      // It would run past the ring's end: a checkpoint first (a large record, rarely).
      try {
        await this.checkpoint(lock, fd, from.gen);
      } catch (e) {
        fs.closeSync(fd);
        throw e;
      }
      from = { gen: from.gen + 1, end: 0, applied: true };
    }
    const line = Buffer.from(`R ${from.gen} ${hash(from.gen, json)} ${json}\n`);
    let size = -1;
    try {
      size = fs.fstatSync(fd).size;
      lock.writeContent(formatPosition({ ...from, applied: false }));
      fs.writeSync(fd, line, 0, line.length, from.end);
      count('fdatasync');
      await fdatasync(fd);
    } catch (e) {
      try {
        // The record does not count: the position is back (it is overwritten next time), and a
        // log that grew for it (its first lap, or a full disk) is cut back.
        if (size >= 0 && fs.fstatSync(fd).size > size) fs.ftruncateSync(fd, size);
        lock.writeContent(formatPosition(from));
      } catch {
        /* then the next operation replays (and finds the record torn or whole) */
      }
      fs.closeSync(fd);
      throw ioError(e, 'write', this.file);
    }
    return { fd, at: { gen: from.gen, end: from.end + line.length, applied: false } };
  }

  /**
   * Whether the log is due a checkpoint after this commit (then {@link applied}, not
   * {@link markApplied}): near the ring's end, so the next records need not wait for one.
   */
  due(a: Appended): boolean {
    return a.at.end >= RING_BYTES - RING_RESERVE;
  }

  /** The record is applied: the position says so (not synced), the log is closed. Never throws. */
  markApplied(lock: FileLock, a: Appended): void {
    try {
      lock.writeContent(formatPosition({ ...a.at, applied: true }));
    } catch {
      /* still "pending": the next operation replays */
    } finally {
      fs.closeSync(a.fd);
    }
  }

  /** {@link markApplied}, checkpointing first when {@link due}. Never rejects. */
  async applied(lock: FileLock, a: Appended): Promise<void> {
    if (this.due(a)) {
      try {
        await this.checkpoint(lock, a.fd, a.at.gen);
        fs.closeSync(a.fd);
        return;
      } catch {
        /* not checkpointed: the log keeps the documents, and the next commit tries again */
      }
    }
    this.markApplied(lock, a);
  }

  /**
   * The intact records of the current generation, in order (the log read from offset 0 while
   * records are intact and of the first one's generation). Undefined when there is no log.
   */
  read(): { gen: number; records: Op[][] } | undefined {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(this.file);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return undefined;
      throw ioError(e, 'read', this.file);
    }
    const records: Op[][] = [];
    let gen = 0;
    for (let at = 0; at < buf.length;) {
      const nl = buf.indexOf(10, at);
      if (nl < 0) break;
      const r = parseRecord(buf.toString('utf8', at, nl));
      if (!r || (gen !== 0 && r.gen !== gen)) break;
      gen = r.gen;
      records.push(r.ops);
      at = nl + 1;
    }
    return { gen, records };
  }

  /**
   * Replays the log (the caller holds the exclusive lock): `apply` puts each record's documents
   * in place, in order; then a checkpoint makes them durable and starts a new generation.
   */
  async replay(lock: FileLock, apply: (ops: Op[]) => void): Promise<void> {
    const log = this.read();
    if (!log) {
      lock.writeContent(formatPosition({ gen: 1, end: 0, applied: true }));
      return;
    }
    for (const ops of log.records) apply(ops);
    const fd = await this.open();
    try {
      await this.checkpoint(lock, fd, Math.max(log.gen, parsePosition(lock.readContent())?.gen ?? 0));
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Makes every document on the state directory's file system durable; the next record starts generation `gen + 1` at 0. */
  private async checkpoint(lock: FileLock, fd: number, gen: number): Promise<void> {
    count('syncfs');
    try {
      await native.syncfs(fd);
    } catch (e) {
      throw ioError(e, 'sync', this.dir);
    }
    lock.writeContent(formatPosition({ gen: gen + 1, end: 0, applied: true }));
  }

  /** Opens the log for writing; a new one is filled with zeros once, and its name synced. */
  private async open(): Promise<number> {
    try {
      return fs.openSync(this.file, fs.constants.O_WRONLY);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw ioError(e, 'open', this.file);
    }
    let fd: number;
    try {
      fd = fs.openSync(this.file, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o600);
    } catch (e) {
      throw ioError(e, 'create', this.file);
    }
    try {
      // Written once: later records overwrite blocks already written (no journal commit).
      // A disk too full for it: the log grows with its records instead.
      try {
        const zeros = Buffer.alloc(64 * 1024);
        for (let at = 0; at < RING_BYTES; at += zeros.length) fs.writeSync(fd, zeros, 0, zeros.length, at);
        count('fdatasync');
        await fdatasync(fd);
      } catch {
        fs.ftruncateSync(fd, 0);
      }
      await syncFile(this.dir);
    } catch (e) {
      fs.closeSync(fd);
      throw ioError(e, 'create', this.file);
    }
    return fd;
  }
}

/** A record line's generation and operations, or undefined (damaged, torn, zeros). */
function parseRecord(line: string): { gen: number; ops: Op[] } | undefined {
  const m = /^R (\d+) ([0-9a-f]{16}) /u.exec(line);
  if (!m) return undefined;
  const gen = Number(m[1]);
  const json = line.slice(m[0].length);
  if (hash(gen, json) !== m[2]) return undefined;
  try {
    const j = JSON.parse(json) as { ops?: unknown };
    if (!Array.isArray(j.ops)) return undefined;
    return {
      gen,
      ops: j.ops.map((o: { collection: unknown; key: unknown; doc: unknown }) => {
        if (o.doc !== null && (typeof o.doc !== 'object' || (o.doc as { key?: unknown }).key !== o.key)) throw new Error('malformed');
        return { collection: checkCollection(o.collection), key: checkKey(o.key), doc: o.doc === null ? null : JSON.stringify(o.doc) };
      }),
    };
  } catch {
    return undefined;
  }
}
