/**
 * Exit statuses and error output of the `nsnet` CLI.
 *
 * Every failure prints exactly one line on stderr, `nsnet: CODE: message`, and ends the process
 * with the status of its class below. With `--json`, stdout also carries the error as the one
 * JSON document of the run: `{"error":{"code","message","details"}}` (decided so that a script
 * reading stdout always gets exactly one parsable document, success or not; stderr stays the
 * human channel).
 *
 * | status | meaning                                   | codes                                                   |
 * |--------|-------------------------------------------|---------------------------------------------------------|
 * | 0      | success                                   |                                                         |
 * | 1      | unexpected / internal                     | anything not below (ERR_STORE_CORRUPT, ERR_NATIVE, bugs); ERR_NOT_BUILT (bin/nsnet: the package was never built) |
 * | 2      | usage (unknown command or option, missing argument) | ERR_USAGE                                     |
 * | 3      | not found                                 | `*_NOT_FOUND`                                           |
 * | 4      | conflict: exists, in use, overlaps, full  | `*_EXISTS`, `*_IN_USE`, ERR_DAEMON_RUNNING, ERR_SUBNET_OVERLAP, ERR_SUBNET_FULL, ERR_NO_FREE_SUBNET, ERR_NETWORK_INTERNAL, ERR_ADDRESS_RESERVED |
 * | 5      | invalid input                             | `ERR_INVALID_*`, ERR_NOT_A_NETNS, `ERR_*_OUTSIDE_SUBNET`, ERR_NO_IPV6_SUBNET |
 * | 6      | refused by the system                     | errno codes from the kernel (EPERM, EEXIST, EBUSY, …), ERR_NOT_ROOT, ERR_NOT_READABLE (bin/nsnet: the package's files are not readable by this user), any error whose errno is EACCES/EPERM |
 * | 7      | not available in this build or on this machine | ERR_NOT_AVAILABLE                                  |
 * | 8      | a check failed (the demo, later `doctor`) | ERR_CHECK_FAILED                                        |
 * | 130/143| interrupted by SIGINT / SIGTERM           | ERR_INTERRUPTED                                         |
 *
 * `nsnet netns exec` is the exception: it ends with the status of the command it ran.
 */
import { NsnetError } from '../errors';

export const EXIT = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  CONFLICT: 4,
  INVALID: 5,
  REFUSED: 6,
  NOT_AVAILABLE: 7,
  CHECK_FAILED: 8,
  SIGINT: 130,
  SIGTERM: 143,
} as const;

const CONFLICTS = new Set([
  'ERR_DAEMON_RUNNING',
  'ERR_SUBNET_OVERLAP',
  'ERR_SUBNET_FULL',
  'ERR_NO_FREE_SUBNET',
  'ERR_NETWORK_INTERNAL',
  'ERR_ADDRESS_RESERVED',
]);
const INVALID = new Set(['ERR_NOT_A_NETNS', 'ERR_NO_IPV6_SUBNET']);

/** The exit status for an error code (and its details: a permission errno makes it a refusal). */
export function exitStatus(code: string, details: Record<string, unknown> = {}): number {
  if (code === 'ERR_USAGE') return EXIT.USAGE;
  if (code === 'ERR_NOT_AVAILABLE' || code === 'ERR_NO_CONTROL_PLANE') return EXIT.NOT_AVAILABLE;
  if (code === 'ERR_CHECK_FAILED') return EXIT.CHECK_FAILED;
  if (code === 'ERR_INTERRUPTED') return details.signal === 'SIGTERM' ? EXIT.SIGTERM : EXIT.SIGINT;
  if (code === 'ERR_NOT_ROOT' || details.errno === 'EACCES' || details.errno === 'EPERM') return EXIT.REFUSED;
  if (code.endsWith('_NOT_FOUND')) return EXIT.NOT_FOUND;
  if (code.endsWith('_EXISTS') || code.endsWith('_IN_USE') || CONFLICTS.has(code)) return EXIT.CONFLICT;
  if (code.startsWith('ERR_INVALID_') || code.endsWith('_OUTSIDE_SUBNET') || INVALID.has(code)) return EXIT.INVALID;
  if (/^E[A-Z0-9]+$/u.test(code)) return EXIT.REFUSED; // an errno name: the kernel said no
  return EXIT.INTERNAL;
}

/** Any thrown value as an NsnetError (bugs become ERR_INTERNAL with their message). */
export function asNsnetError(e: unknown): NsnetError {
  if (e instanceof NsnetError) return e;
  const err = e as { code?: unknown; message?: unknown };
  if (err && typeof err.code === 'string' && /^E[A-Z0-9]+$/u.test(err.code))
    return new NsnetError(err.code, String(err.message ?? err.code), { errno: err.code });
  return new NsnetError('ERR_INTERNAL', e instanceof Error ? e.message : String(e));
}

/** `nsnet: CODE: message`, one line (newlines in a message are flattened). */
export function errorLine(e: NsnetError): string {
  return `nsnet: ${e.code}: ${e.message.replace(/\s*\n\s*/gu, ' ')}\n`;
}

/** The `--json` error document. Details are made JSON-safe (bigints, cycles). */
export function errorDocument(e: NsnetError): { error: { code: string; message: string; details: Record<string, unknown> } } {
  return { error: { code: e.code, message: e.message, details: jsonSafe(e.details) as Record<string, unknown> } };
}

/** A deep copy that JSON.stringify cannot choke on. */
export function jsonSafe(value: unknown): unknown {
  const seen = new WeakSet<object>();
  return JSON.parse(
    JSON.stringify(value ?? {}, (_k, v: unknown) => {
      if (typeof v === 'bigint') return v.toString();
      if (v && typeof v === 'object') {
        if (seen.has(v)) return '[circular]';
        seen.add(v);
      }
      return v;
    }) ?? '{}',
  );
}

/** A usage error (exit status 2). */
export function usage(message: string, details: Record<string, unknown> = {}): NsnetError {
  return new NsnetError('ERR_USAGE', message, details);
}
