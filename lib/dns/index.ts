/**
 * The embedded DNS resolver layer: containers of a network find each other by name.
 * `runDns()` starts the per-host resolver; `dnsConfig()` says what a container's resolv.conf
 * gets; `checkEndpointNames()` / `checkNetworkDns()` validate user input for connect() and
 * createNetwork().
 */
export { runDns, DnsResolver } from './resolver';
export { dnsConfig, dnsEnabled } from './config';
export type { DnsNetworkRecord } from './config';
export { checkEndpointNames, checkNetworkDns, parseUpstream } from './names';
export { parseResolvConf, readResolvConf } from './resolvconf';
export type { ResolvConf } from './resolvconf';
export type { DnsConfig, DnsListener, DnsOptions, DnsStats, EndpointDnsNames, NetworkDns } from './types';
