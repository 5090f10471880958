/**
 * Network namespaces: create and remove named ones (bind-mounted under /var/run/netns the way
 * iproute2 does, so `ip netns` sees them), list them, and open any namespace by name, path,
 * pid or fd. Sysctls are read and written inside a namespace from a thread of the addon that
 * enters it; the calling thread never changes namespace.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NsnetError, fromNative, invalid } from './errors';
import { native } from './native';
import * as v from './validate';

/** Where named namespaces live (iproute2's NETNS_RUN_DIR). */
export const NETNS_DIR = '/var/run/netns';

/**
 * A network namespace reference:
 * - a name (`'c1'`: a namespace under /var/run/netns),
 * - a path (`'/var/run/netns/c1'`, `'/proc/1234/ns/net'`: anything containing '/'),
 * - a pid (a number, or `{ pid }`: that process's namespace),
 * - an open file descriptor (`{ fd }`).
 * Omitted: the namespace of the calling (main) thread.
 */
export type NetnsSpec = string | number | { pid: number } | { fd: number } | { path: string };

/** An open reference to a network namespace: keeps it alive and identifies it. */
export interface NetnsHandle {
  /** File descriptor of the namespace; valid until close(). */
  readonly fd: number;
  /** The path it was opened from. */
  readonly path: string;
  /** The namespace's inode number: equal inodes (on one dev) are the same namespace. */
  readonly inode: number;
  close(): void;
}

/** Resolves a spec to the path of its namespace file. @internal */
export function netnsPath(spec: NetnsSpec | undefined): string {
  if (spec === undefined) return '/proc/thread-self/ns/net';
  if (typeof spec === 'number') return `/proc/${v.int(spec, 1, 2 ** 22, 'pid', 'ERR_INVALID_NETNS')}/ns/net`;
  if (typeof spec === 'string') {
    if (spec.includes('/')) {
      if (!path.isAbsolute(spec)) throw invalid('ERR_INVALID_NETNS', `namespace path ${JSON.stringify(spec)} must be absolute`, { value: spec });
      return spec;
    }
    return path.join(NETNS_DIR, v.netnsName(spec));
  }
  if (spec && typeof spec === 'object') {
    if ('pid' in spec) return `/proc/${v.int(spec.pid, 1, 2 ** 22, 'pid', 'ERR_INVALID_NETNS')}/ns/net`;
    if ('fd' in spec) return `/proc/self/fd/${v.int(spec.fd, 0, 2 ** 31 - 1, 'fd', 'ERR_INVALID_NETNS')}`;
    if ('path' in spec) return netnsPath(String(spec.path).includes('/') ? spec.path : `./${spec.path}`);
  }
  throw invalid('ERR_INVALID_NETNS', `not a namespace reference: ${JSON.stringify(spec)}`, { value: spec });
}

/**
 * Closes the fd of a namespace handle that was collected without close(): a Netlink, NfTables
 * or Conntrack handle the program dropped. The native socket and thread go with the addon's
 * object; without this the namespace fd (and so the namespace itself) stayed open for the
 * life of the process. Whoever still uses the fd holds the handle, so the number cannot be in
 * use when this runs. (A worker thread's fds are closed by Node when the worker exits.)
 */
const collected = new FinalizationRegistry<number>((fd) => {
  try {
    fs.closeSync(fd);
  } catch {
    /* already closed */
  }
});

/** Opens a namespace and checks that it is a network namespace. @internal */
export function openNetns(spec: NetnsSpec | undefined): NetnsHandle {
  const p = netnsPath(spec);
  let fd: number;
  try {
    fd = fs.openSync(p, fs.constants.O_RDONLY); // libuv opens with O_CLOEXEC;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH')
      throw new NsnetError('ERR_NETNS_NOT_FOUND', `network namespace ${describe(spec)} does not exist (${p})`, { path: p });
    throw fromNative(e, `open network namespace ${p}`);
  }
  let info: { type: string; inode: number };
  try {
    info = native.nsType(fd);
  } catch (e) {
    fs.closeSync(fd);
    throw new NsnetError('ERR_NOT_A_NETNS', `${p} is not a namespace file`, { path: p });
  }
  if (info.type !== 'net') {
    fs.closeSync(fd);
    throw new NsnetError('ERR_NOT_A_NETNS', `${p} is a ${info.type} namespace, not a network namespace`, { path: p });
  }
  let open = true;
  const handle: NetnsHandle = {
    fd,
    path: p,
    inode: info.inode,
    close() {
      if (open) {
        collected.unregister(handle);
        fs.closeSync(fd);
      }
      open = false;
    },
  };
  collected.register(handle, fd, handle);
  return handle;
}

function describe(spec: NetnsSpec | undefined): string {
  return spec === undefined ? '(current)' : JSON.stringify(spec);
}

/** Runs fn with the namespace open, closing it afterwards. @internal */
export async function withNetns<T>(spec: NetnsSpec | undefined, fn: (ns: NetnsHandle) => Promise<T>): Promise<T> {
  const ns = openNetns(spec);
  try {
    return await fn(ns);
  } finally {
    ns.close();
  }
}

/** Named network namespaces, as `ip netns` manages them. */
export class Netns {
  /**
   * Creates a named namespace with loopback up, like `ip netns add NAME`.
   * @throws NsnetError ERR_NETNS_EXISTS if the name is taken, ERR_INVALID_NAME for a bad name.
   */
  static async create(name: string): Promise<void> {
    v.netnsName(name);
    fs.mkdirSync(NETNS_DIR, { recursive: true, mode: 0o755 });
    try {
      await native.netnsCreate(NETNS_DIR, name);
    } catch (e) {
      if ((e as { code?: string }).code === 'EEXIST') throw new NsnetError('ERR_NETNS_EXISTS', `network namespace ${name} already exists`, { name });
      throw fromNative(e, `create network namespace ${name}`);
    }
  }

  /**
   * Removes a named namespace (unmounts and deletes its file). The namespace itself lives on
   * while a process or an open handle still uses it, as with `ip netns del`.
   * @throws NsnetError ERR_NETNS_NOT_FOUND if there is no such namespace.
   */
  static async remove(name: string): Promise<void> {
    const p = path.join(NETNS_DIR, v.netnsName(name));
    try {
      await native.netnsRemove(p);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') throw new NsnetError('ERR_NETNS_NOT_FOUND', `network namespace ${name} does not exist`, { name });
      throw fromNative(e, `remove network namespace ${name}`);
    }
  }

  /** Names of the namespaces under /var/run/netns, sorted. */
  static async list(): Promise<string[]> {
    let names: string[];
    try {
      names = await fs.promises.readdir(NETNS_DIR);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw fromNative(e, `list ${NETNS_DIR}`);
    }
    return names.filter((n) => isNetnsFile(path.join(NETNS_DIR, n))).sort();
  }

  /** Whether a named namespace exists (a mounted network namespace, not just a file). */
  static async exists(name: string): Promise<boolean> {
    return isNetnsFile(path.join(NETNS_DIR, v.netnsName(name)));
  }

  /**
   * Opens a namespace by name, path, pid or fd. The handle keeps the namespace alive until
   * closed.
   */
  static open(spec?: NetnsSpec): NetnsHandle {
    return openNetns(spec);
  }

  /**
   * Reads a sysctl of the net.* tree inside a namespace, or writes it when `value` is given
   * (and returns what reads back). Keys: 'net.ipv4.ip_forward' or 'net/ipv4/conf/eth0.1/rp_filter'.
   * Only net.* keys are allowed: the others are global to the machine.
   */
  static async sysctl(netns: NetnsSpec | undefined, key: string, value?: string | number): Promise<string> {
    v.str(key, 'sysctl key');
    if (!/^net[./][A-Za-z0-9_./@:-]+$/u.test(key) || key.includes('..'))
      throw invalid('ERR_INVALID_SYSCTL', `sysctl key ${JSON.stringify(key)} is not a net.* key; only the per-namespace net.* tree may be changed`, { key });
    const val = value === undefined ? undefined : v.str(String(value), 'sysctl value', 4096);
    return withNetns(netns, async (ns) => {
      try {
        return await native.sysctl(ns.fd, key, val);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === 'ENOENT') throw new NsnetError('ERR_SYSCTL_NOT_FOUND', `sysctl ${key} does not exist in this namespace`, { key });
        throw fromNative(e, `sysctl ${key}`);
      }
    });
  }
}

function isNetnsFile(p: string): boolean {
  try {
    return native.nsType(p).type === 'net';
  } catch {
    return false;
  }
}
