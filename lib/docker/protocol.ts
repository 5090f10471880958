/**
 * Docker's plugin protocol as nsnet serves it: HTTP POST of JSON to `/<Interface>.<Method>` on a
 * unix socket, a JSON reply, errors as `{"Err": "…"}`. The request bodies each method takes
 * (Docker's libnetwork `drivers/remote/api` and `ipams/remote/api`; fields of newer Docker
 * versions are listed too, so that a newer dockerd is not refused), and their checking: a body
 * that is not a JSON object, a field no version of Docker sends, or a required field of the
 * wrong type is refused before anything is done (ERR_INVALID_ARGUMENT).
 */
import { invalid } from '../errors';

/** The interfaces `Plugin.Activate` announces. */
export const IMPLEMENTS = ['NetworkDriver', 'IpamDriver'] as const;

/** The media type of Docker plugin replies. */
export const CONTENT_TYPE = 'application/vnd.docker.plugins.v1+json';

/** A request body after its JSON was parsed and its fields checked. */
export type Body = Record<string, unknown>;

/**
 * The top-level fields of each method's request body (a method not here takes none: Docker
 * sends `null` or `{}`). Required fields are marked with `!`.
 */
export const FIELDS: Readonly<Record<string, readonly string[]>> = {
  'NetworkDriver.CreateNetwork': ['NetworkID!', 'Options', 'IPv4Data', 'IPv6Data'],
  'NetworkDriver.DeleteNetwork': ['NetworkID!'],
  // Docker 20.10 sends `Interface`; libnetwork of 2015 sent `Interfaces`.
  'NetworkDriver.CreateEndpoint': ['NetworkID!', 'EndpointID!', 'Interface', 'Interfaces', 'Options'],
  'NetworkDriver.DeleteEndpoint': ['NetworkID!', 'EndpointID!'],
  'NetworkDriver.EndpointOperInfo': ['NetworkID!', 'EndpointID!'],
  'NetworkDriver.Join': ['NetworkID!', 'EndpointID!', 'SandboxKey!', 'Options'],
  'NetworkDriver.Leave': ['NetworkID!', 'EndpointID!', 'Options'],
  'NetworkDriver.ProgramExternalConnectivity': ['NetworkID!', 'EndpointID!', 'Options'],
  'NetworkDriver.RevokeExternalConnectivity': ['NetworkID!', 'EndpointID!'],
  'NetworkDriver.DiscoverNew': ['DiscoveryType', 'DiscoveryData'],
  'NetworkDriver.DiscoverDelete': ['DiscoveryType', 'DiscoveryData'],
  'IpamDriver.RequestPool': ['AddressSpace', 'Pool', 'SubPool', 'Options', 'V6'],
  'IpamDriver.ReleasePool': ['PoolID!'],
  'IpamDriver.RequestAddress': ['PoolID!', 'Address', 'Options'],
  'IpamDriver.ReleaseAddress': ['PoolID!', 'Address!'],
};

/** Methods whose body is ignored (Docker sends `null`). */
export const NO_BODY = new Set(['Plugin.Activate', 'NetworkDriver.GetCapabilities', 'IpamDriver.GetCapabilities', 'IpamDriver.GetDefaultAddressSpaces']);

/** Fields whose value, when present, must be a string / an object / an array / a boolean. */
const STRINGS = new Set(['NetworkID', 'EndpointID', 'SandboxKey', 'AddressSpace', 'Pool', 'SubPool', 'PoolID', 'Address']);
const OBJECTS = new Set(['Options', 'Interface']);
const ARRAYS = new Set(['IPv4Data', 'IPv6Data', 'Interfaces']);
const BOOLEANS = new Set(['V6']);

/**
 * Parses and checks a request body for `method` (one of {@link FIELDS} or {@link NO_BODY}).
 * @throws ERR_INVALID_ARGUMENT naming what is wrong
 */
export function parseBody(method: string, raw: string): Body {
  let value: unknown;
  try {
    value = raw.trim() === '' ? null : JSON.parse(raw);
  } catch (e) {
    throw invalid('ERR_INVALID_ARGUMENT', `${method}: the request body is not JSON (${(e as Error).message})`, { method });
  }
  if (NO_BODY.has(method)) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw invalid('ERR_INVALID_ARGUMENT', `${method}: the request body must be a JSON object`, { method });
  const body = value as Body;
  const fields = FIELDS[method] ?? [];
  const known = new Set(fields.map((f) => f.replace(/!$/u, '')));
  for (const k of Object.keys(body)) {
    if (!known.has(k))
      throw invalid('ERR_INVALID_ARGUMENT', `${method}: unknown field ${JSON.stringify(k)} (expected ${[...known].join(', ') || 'none'})`, {
        method,
        field: k,
      });
  }
  for (const f of fields) {
    const name = f.replace(/!$/u, '');
    const v = body[name];
    if (v === undefined || v === null) {
      if (f.endsWith('!')) throw invalid('ERR_INVALID_ARGUMENT', `${method}: ${name} is required`, { method, field: name });
      delete body[name];
      continue;
    }
    const bad =
      (STRINGS.has(name) && typeof v !== 'string') ||
      (BOOLEANS.has(name) && typeof v !== 'boolean') ||
      (ARRAYS.has(name) && !Array.isArray(v)) ||
      (OBJECTS.has(name) && (typeof v !== 'object' || Array.isArray(v)));
    if (bad) throw invalid('ERR_INVALID_ARGUMENT', `${method}: ${name} has the wrong type (${Array.isArray(v) ? 'array' : typeof v})`, { method, field: name });
    if (f.endsWith('!') && v === '') throw invalid('ERR_INVALID_ARGUMENT', `${method}: ${name} may not be empty`, { method, field: name });
  }
  return body;
}

/** A string field of a checked body ('' when absent). */
export const str = (b: Body, k: string): string => (typeof b[k] === 'string' ? (b[k] as string) : '');

/** An object field of a checked body ({} when absent). */
export const obj = (b: Body | undefined, k: string): Record<string, unknown> => {
  const v = b?.[k];
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
};
