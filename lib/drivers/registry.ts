/**
 * The drivers, by the name network records carry in `driver`. Adding a mode is a file in this
 * folder and a line here.
 */
import { NsnetError } from '../errors';
import { bridgeDriver } from './bridge';
import { containerDriver } from './container';
import type { Driver } from './driver';
import { hostDriver } from './host';
import { ipvlanDriver } from './ipvlan';
import { macvlanDriver } from './macvlan';
import { noneDriver } from './none';
import { overlayDriver } from './overlay';
import { vlanDriver } from './vlan';
import type { NetworkDriver, NetworkRecord } from '../host-types';

const DRIVERS: Readonly<Record<NetworkDriver, Driver>> = {
  bridge: bridgeDriver,
  macvlan: macvlanDriver,
  ipvlan: ipvlanDriver,
  vlan: vlanDriver,
  overlay: overlayDriver,
  host: hostDriver,
  none: noneDriver,
  container: containerDriver,
};

/** Every driver. */
export const drivers: readonly Driver[] = Object.values(DRIVERS);

/** The driver of that name, or undefined. */
export function findDriver(name: unknown): Driver | undefined {
  return typeof name === 'string' && Object.hasOwn(DRIVERS, name) ? DRIVERS[name as NetworkDriver] : undefined;
}

/** The driver of a recorded network. @throws ERR_STORE_CORRUPT for a record of no known driver */
export function driverOf(net: NetworkRecord): Driver {
  const d = findDriver(net.driver);
  if (!d)
    throw new NsnetError('ERR_STORE_CORRUPT', `network ${net.name} is recorded with an unknown driver ${JSON.stringify(net.driver)}`, { network: net.name });
  return d;
}

/** The default network: recorded at open without being created, made at its first connect (Docker's `bridge`). */
export { DEFAULT_NETWORK_SPEC } from './bridge';
