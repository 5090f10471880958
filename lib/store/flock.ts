/**
 * An advisory file lock (flock(2)) taken by the addon, for the state store: the kernel releases
 * it when the lock is released or the process dies, so a crash never leaves it held.
 */
import * as fs from 'node:fs';
import { fromNative, NsnetError } from '../errors';
import { native } from '../native';

const collected = new FinalizationRegistry<number>((fd) => {
  try {
    fs.closeSync(fd);
  } catch {
    /* already closed */
  }
});

/** A held flock. Release it when done (it is also released if the object is collected). */
export class FileLock {
  private fd: number | undefined;

  private constructor(
    readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
    collected.register(this, fd, this);
  }

  /**
   * Locks `path` (created if missing, unless `create` is false). Waiting happens off the event loop.
   * @param opts.exclusive default true (false: a shared lock)
   * @param opts.wait default true (false: fail at once with ERR_LOCKED if held elsewhere)
   * @param opts.create default true (false: a missing file fails with errno ENOENT)
   */
  static async acquire(path: string, opts: { exclusive?: boolean; wait?: boolean; create?: boolean } = {}): Promise<FileLock> {
    try {
      // Uncontended (the common case): taken at once on this thread. Held elsewhere: the wait
      // happens on a pooled thread of the addon (or fails at once with ERR_LOCKED).
      const create = opts.create ?? true;
      const now = native.tryLockFile(path, opts.exclusive ?? true, create);
      const fd = now >= 0 ? now : await native.lockFile(path, opts.exclusive ?? true, opts.wait ?? true, create);
      return new FileLock(path, fd);
    } catch (e) {
      throw fromNative(e, `lock ${path}`);
    }
  }

  get held(): boolean {
    return this.fd !== undefined;
  }

  /**
   * The lock file's content (up to 4 KiB): a holder may keep a few bytes of state there (the
   * state store keeps its log's position). Read and written through the held descriptor.
   */
  readContent(): string {
    if (this.fd === undefined) throw new NsnetError('ERR_NATIVE', `lock ${this.path} is released`);
    const buf = Buffer.allocUnsafe(4096);
    return buf.toString('utf8', 0, fs.readSync(this.fd, buf, 0, buf.length, 0));
  }

  /** Replaces the lock file's content (one write at offset 0; not synced). */
  writeContent(text: string): void {
    if (this.fd === undefined) throw new NsnetError('ERR_NATIVE', `lock ${this.path} is released`);
    const buf = Buffer.from(text);
    fs.writeSync(this.fd, buf, 0, buf.length, 0);
    if (fs.fstatSync(this.fd).size > buf.length) fs.ftruncateSync(this.fd, buf.length);
  }

  /** The descriptor that holds the lock (to hand the lock to a child process), undefined once released. */
  get descriptor(): number | undefined {
    return this.fd;
  }

  /** Releases the lock. */
  release(): void {
    if (this.fd === undefined) return;
    collected.unregister(this);
    const fd = this.fd;
    this.fd = undefined;
    try {
      fs.closeSync(fd);
    } catch (e) {
      throw new NsnetError('ERR_NATIVE', `release lock ${this.path}: ${(e as Error).message}`);
    }
  }
}
