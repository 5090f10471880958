/**
 * The one file that loads the addon (`node-gyp-build`: a prebuild for this platform first,
 * then `build/Release`), and the types of everything it exports.
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
  /** Raw payload of a message type without a schema. */
  data?: Buffer;
}

export interface NativeAttrs {
  [name: string]: unknown;
  unknown?: { type: number; nested: boolean; data: Buffer }[];
}

export interface NativeRequest {
  type: number;
  flags: number;
  header?: Record<string, number>;
  attrs?: Record<string, unknown>;
  seq?: number;
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
  exec(requests: NativeRequest[], atomic?: boolean): Promise<NativeResult[]>;
  close(): void;
  readonly pending: number;
  readonly closed: boolean;
}

export interface NativeMonitor {
  close(): void;
}

export interface NativeBinding {
  Handle: new (protocol: number, netnsFd: number) => NativeHandle;
  Monitor: new (
    protocol: number,
    netnsFd: number,
    groups: number[],
    callback: (err: (Error & { code?: string }) | null, messages: NativeMessage[] | null) => void,
  ) => NativeMonitor;
  encode(protocol: number, request: NativeRequest): Buffer;
  decode(protocol: number, data: Buffer): NativeMessage[];
  errnoCode(errno: number): string;
  nsType(target: string | number): { type: string; inode: number; dev: number };
  netnsCreate(dir: string, name: string): Promise<void>;
  netnsRemove(path: string): Promise<void>;
  sysctl(netnsFd: number, key: string, value?: string): Promise<string>;
  lockFile(path: string, exclusive: boolean, wait: boolean): Promise<number>;
}

// eslint-disable-next-line @typescript-eslint/no-var-requires
const load = require('node-gyp-build') as (dir: string) => unknown;

/** The addon, loaded once. `dist/lib/native.js` sits two levels below the package root. */
export const native = load(path.join(__dirname, '..', '..')) as NativeBinding;

export const NETLINK_ROUTE = 0;
export const NETLINK_NETFILTER = 12;
