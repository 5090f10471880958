/** nsnet's bridge-mode firewall: its nftables tables and the element operations on them. */
export { Firewall } from './firewall';
export type { EnsureResult, OwnedElement } from './firewall';
export type { FirewallState } from './state';
export type { FirewallCheck } from './check';
export type { FirewallEndpoint, FirewallNetwork, FirewallPort, IpFamily, Protocol } from './elements';
export { epOwner, netOwner, parseOwner } from './elements';
export { INET as FIREWALL_INET_TABLE, L2 as FIREWALL_L2_TABLE } from './layout';
