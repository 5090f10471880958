// ES module entry: re-exports the CommonJS build so `import { Netlink } from 'nsnet'` works.
// test/unit/package.test.ts checks that it exports exactly what the CommonJS entry does.
import cjs from '../dist/lib/index.js';

export const {
  NsnetError,
  NetlinkError,
  Netns,
  NETNS_DIR,
  Netlink,
  FileLock,
  NfTables,
  Conntrack,
  REG,
  canonicalExpr,
  NetworkHost,
  DEFAULT_NETWORK,
  PREDEFINED_NETWORKS,
  Firewall,
  doctor,
  OverlayAgent,
  EtcdControlPlane,
  FileControlPlane,
  runDns,
} = cjs;
export default cjs;
