/**
 * nf_tables constants (linux/netfilter/nf_tables.h, nfnetlink.h, netfilter.h) and the data
 * type ids userspace nft uses for set keys (nftables' datatype.h), so `nft list` shows what
 * nsnet creates with the right types.
 * @internal
 */

export const NFNL_SUBSYS_NFTABLES = 10;
export const NFNL_MSG_BATCH_BEGIN = 16;
export const NFNL_MSG_BATCH_END = 17;

const m = (n: number): number => (NFNL_SUBSYS_NFTABLES << 8) | n;
export const NFT_MSG = {
  NEWTABLE: m(0),
  GETTABLE: m(1),
  DELTABLE: m(2),
  NEWCHAIN: m(3),
  GETCHAIN: m(4),
  DELCHAIN: m(5),
  NEWRULE: m(6),
  GETRULE: m(7),
  DELRULE: m(8),
  NEWSET: m(9),
  GETSET: m(10),
  DELSET: m(11),
  NEWSETELEM: m(12),
  GETSETELEM: m(13),
  DELSETELEM: m(14),
  NEWGEN: m(15),
  GETGEN: m(16),
} as const;

/** Table families (NFPROTO_*). */
export const FAMILIES = { inet: 1, ip: 2, arp: 3, netdev: 5, bridge: 7, ip6: 10 } as const;
export type Family = keyof typeof FAMILIES;

/** Hook numbers: NF_INET_* for ip/ip6/inet/bridge, NF_NETDEV_* for netdev. */
export const HOOKS: Record<string, number> = { prerouting: 0, input: 1, forward: 2, output: 3, postrouting: 4, ingress: 5 };
export const NETDEV_HOOKS: Record<string, number> = { ingress: 0, egress: 1 };

export const NF_DROP = 0;
export const NF_ACCEPT = 1;

export const NFT_SET = { ANONYMOUS: 0x1, CONSTANT: 0x2, INTERVAL: 0x4, MAP: 0x8, TIMEOUT: 0x10, EVAL: 0x20, OBJECT: 0x40, CONCAT: 0x80, EXPR: 0x100 } as const;
export const NFT_SET_ELEM_INTERVAL_END = 0x1;
export const NFT_TABLE_F_DORMANT = 0x1;

/** NFT_DATA_VERDICT: the data type of a verdict map. */
export const NFT_DATA_VERDICT = 0xffffff00;

/** Bits per field of a concatenated type id (nftables' TYPE_BITS). */
export const TYPE_BITS = 6;

/** libnftnl user-data TLV types. */
export const UDATA = { RULE_COMMENT: 0, SET_ELEM_COMMENT: 0, SET_KEYBYTEORDER: 0, SET_DATABYTEORDER: 1 } as const;
