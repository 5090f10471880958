/**
 * The façade's collections in the state store, how their keys are made, and the shape checks
 * that tell a record from a damaged document (a file that parses but holds no record of its
 * collection: edited by hand, or the wrong file copied in).
 */
import { drivers } from '../drivers/registry';
import type { DocumentCheck } from '../store/types';

/** Network records, by name. */
export const NETWORKS = 'networks';
/** Endpoint records, by `network/id`. */
export const ENDPOINTS = 'endpoints';
/** The host-wide port ledger: one document per protocol and host port, naming its holders. */
export const PORTS = 'ports';

/** The key of an endpoint record (and the holder name of its port claims). */
export const epKey = (network: string, id: string): string => `${network}/${id}`;

/** The network and id an endpoint key names (network names have no '/'). */
export function splitEpKey(key: string): { network: string; id: string } | undefined {
  const i = key.indexOf('/');
  return i <= 0 || i === key.length - 1 ? undefined : { network: key.slice(0, i), id: key.slice(i + 1) };
}

const DRIVERS = new Set(drivers.map((d) => d.name as string));
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Why a network document holds no network record of that name (undefined: it does). */
export function checkNetwork(value: unknown, key: string): string | undefined {
  if (!isObject(value)) return 'not a network record (not an object)';
  if (value.name !== key) return `not the record of network ${key} (its name is ${JSON.stringify(value.name)})`;
  if (typeof value.driver !== 'string' || !DRIVERS.has(value.driver)) return `not a network record (driver ${JSON.stringify(value.driver)})`;
  if (
    value.driver !== 'host' &&
    value.driver !== 'none' &&
    value.driver !== 'container' &&
    (typeof value.subnet !== 'string' || typeof value.gateway !== 'string')
  )
    return `not a ${value.driver} network record (no subnet or gateway)`;
  if ((value.driver === 'bridge' || value.driver === 'overlay') && typeof value.bridge !== 'string') return `not a ${value.driver} network record (no bridge)`;
  return undefined;
}

/** Why an endpoint document holds no endpoint record of that key (undefined: it does). */
export function checkEndpoint(value: unknown, key: string): string | undefined {
  if (!isObject(value)) return 'not an endpoint record (not an object)';
  if (typeof value.network !== 'string' || typeof value.id !== 'string' || epKey(value.network, value.id) !== key)
    return `not the record of endpoint ${key} (it names ${JSON.stringify(value.network)}/${JSON.stringify(value.id)})`;
  if (!Array.isArray(value.ports)) return 'not an endpoint record (no ports)';
  return undefined;
}

/** The checks of the record collections, for StoreView.scan / damaged. */
export const RECORD_CHECKS: Readonly<Record<string, DocumentCheck>> = { [NETWORKS]: checkNetwork, [ENDPOINTS]: checkEndpoint };
