/**
 * Reading the façade's records when some documents are damaged. What does not need a damaged
 * document keeps working: listings leave it out and say so through a {@link StateWarning}
 * (naming the file); what needs it fails with ERR_STORE_CORRUPT naming the file. `gc()`
 * repairs (lib/state/repair.ts).
 */
import type { EndpointRecord, HealProblem, NetworkRecord } from '../host-types';
import { NsnetError } from '../errors';
import type { StateWarning, WarningHandler } from '../host-types';

export type { StateWarning, WarningHandler };
import type { DamagedDocument, StoreView } from '../store/types';
import { ENDPOINTS, NETWORKS, checkEndpoint, checkNetwork, splitEpKey } from './collections';

/** What a damaged document stood for, for people. */
export function describeDocument(d: DamagedDocument): string {
  if (d.key === undefined) return `a document of ${d.collection}`;
  if (d.collection === NETWORKS) return `network ${d.key}`;
  const ep = d.collection === ENDPOINTS ? splitEpKey(d.key) : undefined;
  return ep ? `endpoint ${ep.id} of network ${ep.network}` : `${d.collection} ${d.key}`;
}

/** The warning for a damaged document: what it stood for `becomes` (default: left out of a listing). */
export function damageWarning(d: DamagedDocument, becomes = 'is left out'): StateWarning {
  return {
    code: 'WARN_STORE_DAMAGED',
    message: `state store file ${d.file} is damaged (${d.reason}): ${describeDocument(d)} ${becomes}; \`nsnet gc\` (NetworkHost.gc()) repairs it`,
    document: d,
  };
}

/** The default handler: a process warning (Node prints it on stderr). */
export const emitWarning: WarningHandler = (w) => process.emitWarning(w.message, { code: w.code });

/** A damaged record as a problem of reconcile() (which heals the others). */
export function damageProblem(w: StateWarning): HealProblem {
  const d = w.document;
  const ep = d.collection === ENDPOINTS && d.key !== undefined ? splitEpKey(d.key) : undefined;
  const network = ep?.network ?? (d.collection === NETWORKS ? (d.key ?? '') : '');
  return { network, ...(ep ? { endpoint: ep.id } : {}), code: 'ERR_STORE_CORRUPT', message: w.message, file: d.file };
}

/** `warn`, for the warnings about network `name`'s record only (or a record whose name is not known). */
export function concerning(name: string, warn: WarningHandler): WarningHandler {
  return (w) => {
    if (w.document.key === undefined || w.document.key === name) warn(w);
  };
}

/** The network records that can be read; a warning for each damaged one. */
export function readNetworks(view: StoreView, warn: WarningHandler): NetworkRecord[] {
  const { entries, damaged } = view.scan<NetworkRecord>(NETWORKS, checkNetwork);
  for (const d of damaged) warn(damageWarning(d));
  return entries.map((e) => e.value);
}

/**
 * Every endpoint record that can be read; a warning for each damaged one — with `concerning`,
 * only for those that may be that network's (their key says so, or says nothing).
 */
export function readEndpoints(view: StoreView, warn: WarningHandler, concerning?: string): EndpointRecord[] {
  const { entries, damaged } = view.scan<EndpointRecord>(ENDPOINTS, checkEndpoint);
  for (const d of damaged) if (concerning === undefined || mayBelongTo(d, concerning)) warn(damageWarning(d));
  return entries.map((e) => e.value);
}

/** Whether a damaged endpoint document may be one of `network`'s (its key says so, or says nothing). */
function mayBelongTo(d: DamagedDocument, network: string): boolean {
  return d.key === undefined || splitEpKey(d.key)?.network === network;
}

/**
 * The endpoint records of `network`, for an operation that needs all of them (removing the
 * network): ERR_STORE_CORRUPT naming the file when one of them may be damaged.
 */
export function endpointsOn(view: StoreView, network: string): EndpointRecord[] {
  const { entries, damaged } = view.scan<EndpointRecord>(ENDPOINTS, checkEndpoint);
  const d = damaged.find((x) => mayBelongTo(x, network));
  if (d) {
    throw new NsnetError(
      'ERR_STORE_CORRUPT',
      `state store file ${d.file} is corrupt: ${d.reason}; it may be ${describeDocument(d)}, so network ${network}'s endpoints are not known (\`nsnet gc\` repairs the state)`,
      { file: d.file, collection: d.collection, ...(d.key !== undefined ? { key: d.key } : {}), network },
    );
  }
  return entries.map((e) => e.value).filter((e) => e.network === network);
}

/** Whether `key` has a document in `collection`, damaged or not (its file is there). */
export function isRecorded(view: StoreView, collection: string, key: string): boolean {
  return view.keys(collection).includes(key);
}
