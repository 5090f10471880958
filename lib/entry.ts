/**
 * What `require('nsnet')` loads: the exports of ./index.ts (the public API, its types and
 * docs), each module loaded the first time one of its exports is read.
 *
 * Why: loading all of nsnet — ~90 modules and the addon — doubled a process's start (Node 20
 * has no compile cache for user code: module.enableCompileCache() arrived in 22.1), while most
 * programs use a part of it (Netlink alone, NfTables alone, or NetworkHost and what it needs).
 * `require('nsnet')` now costs about what a bare `node -e 0` does; reading `NetworkHost` loads
 * what NetworkHost needs. The values are the same objects as ./index.ts exports
 * (test/unit/package.test.ts checks names and identity); the ES module entry (esm/index.mjs)
 * binds every name at import, so it loads everything.
 * @internal
 */

/** Export name → the module (relative to this file) that defines it. */
const EXPORTS: Record<string, string> = {
  NsnetError: './errors',
  NetlinkError: './errors',
  Netns: './netns',
  NETNS_DIR: './netns',
  Netlink: './netlink/netlink',
  FileLock: './store/flock',
  NfTables: './nftables/nftables',
  REG: './nftables/expr/index',
  canonicalExpr: './nftables/expr/index',
  Conntrack: './conntrack',
  NetworkHost: './host',
  DEFAULT_NETWORK: './host',
  PREDEFINED_NETWORKS: './host',
  Firewall: './firewall/firewall',
  doctor: './doctor',
  OverlayAgent: './overlay/agent',
  EtcdControlPlane: './overlay/etcd',
  FileControlPlane: './overlay/files',
  runDns: './dns/resolver',
};

for (const [name, from] of Object.entries(EXPORTS)) {
  Object.defineProperty(exports, name, {
    enumerable: true,
    configurable: false,
    get: () => (require(from) as Record<string, unknown>)[name],
  });
}

export {}; // a module (TS marks it __esModule, as it does ./index.ts)
