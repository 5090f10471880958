/**
 * The wire format between the `nsnet-cni` client (native/cni/client.c) and the daemon
 * (./daemon.ts) over a unix stream socket: one request, one reply, then the connection closes.
 * Binary and length-prefixed so that the C side needs no JSON; all integers little-endian.
 *
 * ```
 * request  "NSNETCNI" u32 version=1  u32 bodyLength  body:
 *            u32 pid  u64 netnsInode                        the client's pid and network namespace
 *            u32 envCount  { u32 length  "CNI_X=value" }*   its CNI_* variables
 *            u32 stdinLength  stdin                         the configuration, as read
 * reply    "NSNETCNI" u32 version=1  u32 bodyLength  body:
 *            u32 status                                     0 served, 1 declined (run it yourself)
 *            u32 exitCode  u32 stdoutLength stdout  u32 stderrLength stderr
 * ```
 *
 * native/cni/client.c implements the same layout; change both together.
 *
 * The `nsnet` CLI asks the daemon for other things than CNI requests — today one: serve DNS for
 * a state directory in a host namespace (./resolvers.ts). Those are control frames: the same
 * header with the magic "NSNETCTL" and a JSON body (at most {@link MAX_CONTROL_BODY} bytes),
 * answered by a control frame. The C client never sends one.
 */

export const MAGIC = Buffer.from('NSNETCNI', 'latin1');
export const PROTOCOL_VERSION = 1;
/** Largest body either side accepts (a configuration with a big prevResult is a few KiB). */
export const MAX_BODY = 16 * 1024 * 1024;
/** The magic of the CLI's control frames (see the file comment). */
export const CONTROL_MAGIC = Buffer.from('NSNETCTL', 'latin1');
/** Largest control body (a request names a state directory and a namespace path). */
export const MAX_CONTROL_BODY = 64 * 1024;
const HEADER = MAGIC.length + 8;

export const STATUS_SERVED = 0;
export const STATUS_DECLINED = 1;

export interface WireRequest {
  pid: number;
  netnsInode: number;
  env: Record<string, string>;
  stdin: Buffer;
}

export interface WireReply {
  status: number;
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

export class ProtocolError extends Error {}

function frame(body: Buffer[], magic = MAGIC): Buffer {
  const len = body.reduce((n, b) => n + b.length, 0);
  const head = Buffer.alloc(HEADER);
  magic.copy(head, 0);
  head.writeUInt32LE(PROTOCOL_VERSION, MAGIC.length);
  head.writeUInt32LE(len, MAGIC.length + 4);
  return Buffer.concat([head, ...body]);
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const blob = (b: Buffer): Buffer[] => [u32(b.length), b];

/**
 * How many bytes a complete frame starting at `buf` has, once its header is there (undefined
 * until then). Throws ProtocolError for a wrong magic, version or an oversized body.
 */
export function frameLength(buf: Buffer): number | undefined {
  if (buf.length < HEADER) return undefined;
  const control = isControlFrame(buf);
  if (!control && !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new ProtocolError('not an nsnet-cni frame (bad magic)');
  const version = buf.readUInt32LE(MAGIC.length);
  if (version !== PROTOCOL_VERSION) throw new ProtocolError(`protocol version ${version}, expected ${PROTOCOL_VERSION}`);
  const len = buf.readUInt32LE(MAGIC.length + 4);
  const max = control ? MAX_CONTROL_BODY : MAX_BODY;
  if (len > max) throw new ProtocolError(`frame body of ${len} bytes exceeds ${max}`);
  return HEADER + len;
}

class Reader {
  private at = HEADER;
  constructor(private readonly buf: Buffer) {}
  u32(): number {
    if (this.at + 4 > this.buf.length) throw new ProtocolError('truncated frame');
    const n = this.buf.readUInt32LE(this.at);
    this.at += 4;
    return n;
  }
  u64(): number {
    if (this.at + 8 > this.buf.length) throw new ProtocolError('truncated frame');
    const n = this.buf.readBigUInt64LE(this.at);
    this.at += 8;
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError('value out of range');
    return Number(n);
  }
  bytes(): Buffer {
    const n = this.u32();
    if (this.at + n > this.buf.length) throw new ProtocolError('truncated frame');
    const b = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }
  end(): void {
    if (this.at !== this.buf.length) throw new ProtocolError('trailing bytes after the frame');
  }
}

export function encodeRequest(r: WireRequest): Buffer {
  const inode = Buffer.alloc(8);
  inode.writeBigUInt64LE(BigInt(r.netnsInode));
  const env = Object.entries(r.env).flatMap(([k, v]) => blob(Buffer.from(`${k}=${v}`)));
  return frame([u32(r.pid), inode, u32(Object.keys(r.env).length), ...env, ...blob(r.stdin)]);
}

/** Only CNI_* variables travel (at most 64); a name is upper case, a value has no NUL. */
const ENV_RE = /^(CNI_[A-Z0-9_]{1,64})=([^\0]*)$/su;

export function decodeRequest(buf: Buffer): WireRequest {
  const r = new Reader(buf);
  const pid = r.u32();
  const netnsInode = r.u64();
  const count = r.u32();
  if (count > 64) throw new ProtocolError(`${count} environment variables; at most 64 CNI_* ones are sent`);
  const env: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 0; i < count; i++) {
    const m = ENV_RE.exec(r.bytes().toString('utf8'));
    if (!m) throw new ProtocolError('an environment entry is not CNI_NAME=value');
    env[m[1]!] = m[2]!;
  }
  const stdin = r.bytes();
  r.end();
  return { pid, netnsInode, env, stdin };
}

export function encodeReply(r: WireReply): Buffer {
  return frame([u32(r.status), u32(r.exitCode), ...blob(r.stdout), ...blob(r.stderr)]);
}

export function decodeReply(buf: Buffer): WireReply {
  const r = new Reader(buf);
  const status = r.u32();
  const exitCode = r.u32();
  const stdout = r.bytes();
  const stderr = r.bytes();
  r.end();
  return { status, exitCode, stdout, stderr };
}

/** Whether a frame (its first 8 bytes at least) is a control frame. */
export function isControlFrame(buf: Buffer): boolean {
  return buf.length >= CONTROL_MAGIC.length && buf.subarray(0, CONTROL_MAGIC.length).equals(CONTROL_MAGIC);
}

/** A control frame carrying `body` as JSON. */
export function encodeControl(body: unknown): Buffer {
  return frame([Buffer.from(JSON.stringify(body), 'utf8')], CONTROL_MAGIC);
}

/** The JSON body of a complete control frame (an object), or a ProtocolError. */
export function decodeControl(buf: Buffer): Record<string, unknown> {
  if (!isControlFrame(buf) || frameLength(buf) !== buf.length) throw new ProtocolError('not a complete control frame');
  let body: unknown;
  try {
    body = JSON.parse(buf.subarray(HEADER).toString('utf8'));
  } catch {
    throw new ProtocolError('a control frame whose body is not JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ProtocolError('a control frame whose body is not an object');
  return body as Record<string, unknown>;
}
