/**
 * Errors. Every error nsnet throws is an {@link NsnetError} with a stable `code`; errors the
 * kernel returned are {@link NetlinkError}s whose code is the errno name ('EEXIST', 'ENODEV')
 * and which carry the kernel's extended-ACK text when it sent one.
 */

/** Any error raised by nsnet. `code` is stable and meant for programs to match on. */
export class NsnetError extends Error {
  /** A stable code: 'ERR_INVALID_NAME', 'ERR_NETNS_NOT_FOUND', 'EEXIST', ... */
  readonly code: string;
  /** Extra facts about the failure (the offending value, the object involved). */
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'NsnetError';
    this.code = code;
    this.details = details;
  }
}

/** The kernel refused a netlink request. */
export class NetlinkError extends NsnetError {
  /** The errno the kernel returned (positive). */
  readonly errno: number;
  /** The request's message type: 'RTM_NEWLINK', ... */
  readonly operation: string;
  /** The kernel's extended-ACK message ("Unknown device type"), when it sent one. */
  declare readonly extack?: string;
  /** Index of the failing message within a batch, when the request was a batch. */
  declare readonly index?: number;

  constructor(opts: { errno: number; code: string; operation: string; extack?: string; what?: string; index?: number; details?: Record<string, unknown> }) {
    const reason = opts.extack ?? describeErrno(opts.code);
    super(opts.code, `${opts.what ?? opts.operation}: ${reason} (${opts.code})`, opts.details ?? {});
    this.name = 'NetlinkError';
    this.errno = opts.errno;
    this.operation = opts.operation;
    if (opts.extack !== undefined) this.extack = opts.extack;
    if (opts.index !== undefined) this.index = opts.index;
  }
}

const errnoText: Record<string, string> = {
  EEXIST: 'already exists',
  ENODEV: 'no such device',
  ENOENT: 'no such object',
  EPERM: 'operation not permitted',
  EACCES: 'permission denied',
  EINVAL: 'invalid argument',
  EBUSY: 'device or resource busy',
  ENOBUFS: 'netlink buffer overrun',
  EOPNOTSUPP: 'operation not supported',
  ERANGE: 'value out of range',
  ESRCH: 'no such entry',
  ENETUNREACH: 'network unreachable',
  EHOSTUNREACH: 'host unreachable',
  EADDRNOTAVAIL: 'address not available',
};

function describeErrno(code: string): string {
  return errnoText[code] ?? code;
}

/** Turns an error thrown by the addon into an NsnetError, keeping its code. @internal */
export function fromNative(e: unknown, what?: string): NsnetError {
  if (e instanceof NsnetError) return e;
  const err = e as Error & { code?: string; errno?: number };
  const code = typeof err?.code === 'string' ? err.code : 'ERR_NATIVE';
  const message = what ? `${what}: ${err?.message ?? String(e)}` : (err?.message ?? String(e));
  const out = new NsnetError(code, message, err?.errno !== undefined ? { errno: err.errno } : {});
  return out;
}

/** Shorthand for input validation failures. @internal */
export function invalid(code: string, message: string, details: Record<string, unknown> = {}): NsnetError {
  return new NsnetError(code, message, details);
}
