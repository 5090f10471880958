/**
 * The one file that loads the addon (`node-gyp-build`: a prebuild for this platform first,
 * then `build/Release`), and the types of everything it exports.
 *
 * `NSNET_ADDON=/path/to/nsnet.node` loads that binary instead: scripts/asan.js points it at
 * the build made with ASan and UBSan (build/asan/nsnet.node) to run the kernel tests against
 * it. A relative path is taken from the current directory. Meant for tests and debugging.
 * @internal
 */
import * as path from 'node:path';

/** A decoded netlink message. */
export interface NativeMessage {
  type: number;
  /** Message type name: 'RTM_NEWLINK', ... */
  name: string;
  flags: number;
  seq: number;
  pid: number;
  /** The fixed header (ifinfomsg, rtmsg, ...), by field name. */
  header: Record<string, number>;
  /** Attributes by name; `unknown` holds those without a schema row. */
  attrs: NativeAttrs;
  /** Raw payload (hex) of a message type without a schema. */
  data?: string;
}

/**
 * Decoded attributes. Binary values are lowercase hex strings (they are decoded off the main
 * thread into JSON); integers beyond 2^53 are decimal strings.
 */
export interface NativeAttrs {
  [name: string]: unknown;
  unknown?: { type: number; nested: boolean; data: string }[];
}

export interface NativeRequest {
  type: number;
  flags: number;
  header?: Record<string, number>;
  attrs?: Record<string, unknown>;
  seq?: number;
  /** Reply attributes to leave out when decoding (by schema name). */
  omit?: string[];
  /** Only these reply attributes are decoded (by schema name). */
  only?: string[];
}

/** What came back for one message of a request. */
export interface NativeResult {
  replies: NativeMessage[];
  operation: string;
  errno?: number;
  code?: string;
  extack?: string;
  extackOffset?: number;
}

export interface NativeHandle {
  /**
   * With `onPiece`, a long dump's replies come to it in pieces while the dump goes on (`null`:
   * the dump restarted, drop what came for that message) and the result holds only the rest.
   * `onPiece` must not throw.
   */
  exec(requests: NativeRequest[], atomic?: boolean, onPiece?: (index: number, replies: NativeMessage[] | null) => void): Promise<NativeResult[]>;
  close(): void;
  readonly pending: number;
  readonly closed: boolean;
}

export interface NativeMonitor {
  close(): void;
}

/** A directory's change counter (native/udp/change_watch.h). */
export interface NativeChangeWatch {
  /** Drains the pending inotify events: the count after them, or -1 once the watch is gone. */
  generation(): number;
  close(): void;
}

/**
 * A UDP socket served on the event loop (native/udp/responder.h): datagrams whose bytes after
 * the first two, from that address, are in its table are answered from it while the watch's
 * generation is the one they were remembered under; the rest go to `onMiss`.
 */
export interface NativeUdpResponder {
  /** Records `reply` for `request` from `address`; false (nothing recorded) when `generation` is no longer current. */
  remember(request: Buffer, address: string, reply: Buffer, tag: number, generation: number): boolean;
  forget(): void;
  /** false: the kernel refused it (a full buffer, a vanished client). */
  send(datagram: Buffer, address: string, port: number): boolean;
  /** Datagrams answered from the table, by the tag of their entry (0-3). */
  hits(): number[];
  close(): void;
}

export interface NativeBinding {
  Handle: new (protocol: number, netnsFd: number) => NativeHandle;
  Monitor: new (
    protocol: number,
    netnsFd: number,
    groups: number[],
    /** First called with (null, null) once subscribed, then with each datagram's messages. */
    callback: (err: (Error & { code?: string }) | null, messages: NativeMessage[] | null) => void,
  ) => NativeMonitor;
  /** @throws with the errno's code when `dir` cannot be watched. */
  ChangeWatch: new (dir: string) => NativeChangeWatch;
  /** Takes `fd` (closed by close()). */
  UdpResponder: new (fd: number, watch: NativeChangeWatch | null, onMiss: (datagram: Buffer, address: string, port: number) => void) => NativeUdpResponder;
  encode(protocol: number, request: NativeRequest): Buffer;
  decode(protocol: number, data: Buffer): NativeMessage[];
  errnoCode(errno: number): string;
  parseError(data: Buffer): { errno: number; code: string; extack?: string; extackOffset?: number };
  nsType(target: string | number): { type: string; inode: number; dev: number };
  netnsCreate(dir: string, name: string): Promise<void>;
  netnsRemove(path: string): Promise<void>;
  sysctl(netnsFd: number, key: string, value?: string): Promise<string>;
  lockFile(path: string, exclusive: boolean, wait: boolean, create?: boolean): Promise<number>;
  /** The same without waiting and without a thread: an fd holding the lock, or -1 when another holder has it. */
  tryLockFile(path: string, exclusive: boolean, create?: boolean): number;
  /**
   * A one-shot exchange in another namespace (what a Handle's exec answers), run by a pooled
   * thread of the addon that enters the namespace, opens a socket, runs the requests, closes it
   * and goes back: no handle, no worker thread (native/worker/exec_in.h).
   */
  execIn(protocol: number, netnsFd: number, requests: NativeRequest[], atomic?: boolean): Promise<NativeResult[]>;
  /** syncfs(2) of the file system holding `fd`, off the event loop. */
  syncfs(fd: number): Promise<void>;
  /** Threads the addon's pool has started since the process began (the benchmark counts them). */
  threadsStarted(): number;
  /** A non-blocking socket made inside the namespace (see native/netns/inet_socket.cc); the caller owns the fd. */
  inetSocket(netnsFd: number, spec: InetSocketSpec): Promise<number>;
  /** malloc_trim(0): the C heap's free pages back to the kernel; false without glibc. */
  trimMemory(): boolean;
  /** CPU time the calling thread has used, in ms (CLOCK_THREAD_CPUTIME_ID; the benchmark's). */
  threadCpuMs(): number;
}

/** What {@link NativeBinding.inetSocket} makes. */
export interface InetSocketSpec {
  family: 4 | 6;
  type: 'udp' | 'tcp';
  /** Bind to this literal address (with `port`, default 0). */
  address?: string;
  port?: number;
  /** IP_FREEBIND / IPV6_FREEBIND: bind an address the namespace does not have (yet). */
  freebind?: boolean;
  reuseAddr?: boolean;
  /** TCP: connect to this literal address and port before returning. */
  connect?: { address: string; port: number };
  /** How long the connect may take (default 2000 ms). */
  timeoutMs?: number;
}

const load = require('node-gyp-build') as (dir: string) => unknown;

/** The addon, loaded once. `dist/lib/native.js` sits two levels below the package root. */
export const native = (process.env.NSNET_ADDON ? require(path.resolve(process.env.NSNET_ADDON)) : load(path.join(__dirname, '..', '..'))) as NativeBinding;

export const NETLINK_ROUTE = 0;
export const NETLINK_NETFILTER = 12;
export const NETLINK_SOCK_DIAG = 4;
export const NETLINK_XFRM = 6;
