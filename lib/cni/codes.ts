/**
 * CNI error codes and the mapping of nsnet's errors onto them.
 *
 * Codes 0..99 are the spec's well-known codes; 100 and above are nsnet's own (the spec leaves
 * them to plugins). Every error the plugin prints is `{ cniVersion, code, msg, details }` on
 * stdout with exit status 1; `details` carries nsnet's stable error code (`ERR_PORT_IN_USE`)
 * so a program can match on it without parsing the message.
 */
import { NetlinkError, NsnetError } from '../errors';

/** The CNI spec's well-known error codes (SPEC.md "Error codes", v1.1.0). */
export const CNI_ERR = {
  /** Incompatible CNI version. */
  INCOMPATIBLE_VERSION: 1,
  /** Unsupported field in network configuration. */
  UNSUPPORTED_FIELD: 2,
  /** Container unknown or does not exist. */
  UNKNOWN_CONTAINER: 3,
  /** Invalid necessary environment variables (CNI_COMMAND, CNI_CONTAINERID, …). */
  INVALID_ENV: 4,
  /** I/O failure (the state directory). */
  IO_FAILURE: 5,
  /** Failed to decode content (stdin is not JSON). */
  DECODE_FAILURE: 6,
  /** Invalid network config. */
  INVALID_CONFIG: 7,
  /** Try again later. */
  TRY_AGAIN: 11,
  /** STATUS: the plugin is not available (cannot serve ADD). */
  NOT_AVAILABLE: 50,
  /** STATUS: not available, and existing containers may have limited connectivity. */
  LIMITED_CONNECTIVITY: 51,
} as const;

/** nsnet's own codes (100+). */
export const NSNET_ERR = {
  /** Anything not classified below (details names nsnet's code). */
  INTERNAL: 100,
  /** A published host port is held by another endpoint or a host process (ERR_PORT_IN_USE). */
  PORT_IN_USE: 101,
  /** Addressing: address taken, outside the subnet, subnet full or overlapping another network. */
  ADDRESS: 102,
  /** The kernel refused a request (a NetlinkError: details names the errno and operation). */
  KERNEL: 103,
  /** ADD for an attachment that exists with other settings (another netns, other ports). */
  ATTACHMENT_EXISTS: 104,
  /** CHECK: the container's networking does not match what ADD set up. */
  CHECK_FAILED: 105,
  /** ADD: the container already has an interface named CNI_IFNAME (ERR_IFNAME_IN_USE); nothing was made. */
  IFNAME_IN_USE: 106,
} as const;

/** An error to print as CNI error JSON. */
export class CniError extends Error {
  constructor(
    readonly code: number,
    message: string,
    /** Extra text for `details`: nsnet's error code, the offending value. */
    readonly details = '',
  ) {
    super(message);
    this.name = 'CniError';
  }
}

const ADDRESS_CODES = new Set([
  'ERR_ADDRESS_IN_USE',
  'ERR_ADDRESS_OUTSIDE_SUBNET',
  'ERR_ADDRESS_RESERVED',
  'ERR_SUBNET_FULL',
  'ERR_NO_FREE_SUBNET',
  'ERR_SUBNET_OVERLAP',
]);
/** nsnet codes that mean "the configuration asks for something impossible". */
const CONFIG_CODES = new Set([
  'ERR_NETWORK_INTERNAL',
  'ERR_NAME_IN_USE',
  'ERR_BRIDGE_IN_USE',
  'ERR_PARENT_NOT_FOUND',
  'ERR_GATEWAY_OUTSIDE_SUBNET',
  'ERR_RANGE_OUTSIDE_SUBNET',
  'ERR_NO_IPV6_SUBNET',
]);

/** Turns anything thrown while serving a request into a CniError. */
export function toCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  if (e instanceof NetlinkError) {
    const extra = e.extack ? `: ${e.extack}` : '';
    return new CniError(NSNET_ERR.KERNEL, e.message, `${e.code} (${e.operation}${extra})`);
  }
  if (e instanceof NsnetError) {
    const c = e.code;
    if (c === 'ERR_PORT_IN_USE') return new CniError(NSNET_ERR.PORT_IN_USE, e.message, c);
    if (ADDRESS_CODES.has(c)) return new CniError(NSNET_ERR.ADDRESS, e.message, c);
    if (c === 'ERR_ENDPOINT_EXISTS') return new CniError(NSNET_ERR.ATTACHMENT_EXISTS, e.message, c);
    if (c === 'ERR_IFNAME_IN_USE') return new CniError(NSNET_ERR.IFNAME_IN_USE, e.message, c);
    if (c === 'ERR_NETNS_NOT_FOUND' || c === 'ERR_NOT_A_NETNS') return new CniError(CNI_ERR.UNKNOWN_CONTAINER, e.message, c);
    if (c.startsWith('ERR_STORE_')) return new CniError(c === 'ERR_STORE_IO' ? CNI_ERR.IO_FAILURE : NSNET_ERR.INTERNAL, e.message, c);
    if (c.startsWith('ERR_INVALID_') || CONFIG_CODES.has(c)) return new CniError(CNI_ERR.INVALID_CONFIG, e.message, c);
    return new CniError(NSNET_ERR.INTERNAL, e.message, c);
  }
  const err = e as { message?: string; code?: string };
  return new CniError(NSNET_ERR.INTERNAL, err?.message ?? String(e), typeof err?.code === 'string' ? err.code : 'unexpected');
}
