/**
 * The small file-system helpers of the store: reading a file whole, writing one (synced on
 * request), syncing a directory, and ERR_STORE_IO for a failed system call.
 * @internal
 */
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import { NsnetError } from '../errors';
import { count } from '../phases';

const fdatasync = promisify(fs.fdatasync);
const fsync = promisify(fs.fsync);

/** Wraps a failed system call in ERR_STORE_IO (details.errno: 'ENOSPC', 'EROFS', ...). */
export function ioError(e: unknown, what: string, file: string): NsnetError {
  if (e instanceof NsnetError && e.code.startsWith('ERR_') && e.code !== 'ERR_NATIVE') return e;
  const err = e as { code?: string; message?: string };
  const errno = typeof err?.code === 'string' ? err.code : 'EIO';
  return new NsnetError('ERR_STORE_IO', `state store: cannot ${what} ${file}: ${errno} (${err?.message ?? String(e)})`, { errno, file });
}

const readBuf = Buffer.allocUnsafe(64 * 1024);

/** A file's text, or null when it is absent; other failures are ERR_STORE_IO. */
export function readText(file: string): string | null {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const n = fs.readSync(fd, readBuf, 0, readBuf.length, 0);
    return n < readBuf.length ? readBuf.toString('utf8', 0, n) : fs.readFileSync(fd, 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return null;
    throw ioError(e, 'read', file);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Writes `text` to `file` (created or truncated, mode 0600); with `sync`, waits until it is on disk. */
export async function writeFile(file: string, text: string, sync: boolean): Promise<void> {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'w', 0o600);
    fs.writeFileSync(fd, text);
    if (sync) {
      count('fdatasync');
      await fdatasync(fd);
    }
  } catch (e) {
    throw ioError(e, 'write', file);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Writes `text` to `file` (created or truncated, mode 0600), not synced. */
export function writeFileSync(file: string, text: string): void {
  try {
    fs.writeFileSync(file, text, { mode: 0o600 });
  } catch (e) {
    throw ioError(e, 'write', file);
  }
}

/** Waits until `file` (or a directory's entries) is on disk. */
export async function syncFile(dir: string): Promise<void> {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    count('fsync');
    await fsync(fd);
  } catch (e) {
    throw ioError(e, 'sync', dir);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export function unlinkQuiet(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    /* absent, or the file system refuses: a stale temp file is harmless */
  }
}
