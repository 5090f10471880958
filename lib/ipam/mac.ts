/**
 * MAC addresses derived from IPv4 addresses, as Docker does: stable for an address, locally
 * administered (0x02 bit set) and unicast.
 */
import * as validate from '../validate';

/** '02:42:' + the four address bytes in hex: macFromIp('172.20.0.2') === '02:42:ac:14:00:02'. ERR_INVALID_IP otherwise. */
export function macFromIp(ipv4: string): string {
  const { address } = validate.ip(ipv4, 4, 'IPv4 address');
  return ['02', '42', ...address.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))].join(':');
}
