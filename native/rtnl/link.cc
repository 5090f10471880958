// RTM_NEWLINK / RTM_DELLINK / RTM_GETLINK: struct ifinfomsg + IFLA_* attributes, with the
// per-kind IFLA_INFO_DATA tables for veth, bridge, vxlan, macvlan, ipvlan and vlan and the
// bridge-port IFLA_INFO_SLAVE_DATA. Reference: include/uapi/linux/if_link.h, linux/veth.h.
// The typed side of each kind is lib/netlink/kinds/<kind>.ts.
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include <cstddef>

#include "../netlink/schema.h"
#include "rtnl.h"

namespace nl {
namespace {

using K = Kind;

const Struct kIfinfomsg{"ifinfomsg",
                        sizeof(ifinfomsg),
                        {{"family", offsetof(ifinfomsg, ifi_family), 1, false},
                         {"type", offsetof(ifinfomsg, ifi_type), 2, false},
                         {"index", offsetof(ifinfomsg, ifi_index), 4, true},
                         {"flags", offsetof(ifinfomsg, ifi_flags), 4, false},
                         {"change", offsetof(ifinfomsg, ifi_change), 4, false}}};

extern const Table kLink;

const Table kVeth{"veth", {{"peer", VETH_INFO_PEER, K::NestedMsg, &kLink, &kIfinfomsg}}};

const Table kBridge{"bridge",
                    {{"forwardDelay", IFLA_BR_FORWARD_DELAY, K::U32},
                     {"helloTime", IFLA_BR_HELLO_TIME, K::U32},
                     {"maxAge", IFLA_BR_MAX_AGE, K::U32},
                     {"ageingTime", IFLA_BR_AGEING_TIME, K::U32},
                     {"stpState", IFLA_BR_STP_STATE, K::U32},
                     {"priority", IFLA_BR_PRIORITY, K::U16},
                     {"vlanFiltering", IFLA_BR_VLAN_FILTERING, K::U8},
                     {"vlanProtocol", IFLA_BR_VLAN_PROTOCOL, K::Be16},
                     {"groupFwdMask", IFLA_BR_GROUP_FWD_MASK, K::U16},
                     {"rootId", IFLA_BR_ROOT_ID, K::Binary},
                     {"bridgeId", IFLA_BR_BRIDGE_ID, K::Binary},
                     {"rootPort", IFLA_BR_ROOT_PORT, K::U16},
                     {"rootPathCost", IFLA_BR_ROOT_PATH_COST, K::U32},
                     {"topologyChange", IFLA_BR_TOPOLOGY_CHANGE, K::U8},
                     {"topologyChangeDetected", IFLA_BR_TOPOLOGY_CHANGE_DETECTED, K::U8},
                     {"groupAddr", IFLA_BR_GROUP_ADDR, K::Mac},
                     {"mcastRouter", IFLA_BR_MCAST_ROUTER, K::U8},
                     {"mcastSnooping", IFLA_BR_MCAST_SNOOPING, K::U8},
                     {"mcastQuerier", IFLA_BR_MCAST_QUERIER, K::U8},
                     {"nfCallIptables", IFLA_BR_NF_CALL_IPTABLES, K::U8},
                     {"nfCallIp6tables", IFLA_BR_NF_CALL_IP6TABLES, K::U8},
                     {"nfCallArptables", IFLA_BR_NF_CALL_ARPTABLES, K::U8},
                     {"vlanDefaultPvid", IFLA_BR_VLAN_DEFAULT_PVID, K::U16},
                     {"vlanStatsEnabled", IFLA_BR_VLAN_STATS_ENABLED, K::U8},
                     {"mcastStatsEnabled", IFLA_BR_MCAST_STATS_ENABLED, K::U8},
                     {"mcastIgmpVersion", IFLA_BR_MCAST_IGMP_VERSION, K::U8},
                     {"mcastMldVersion", IFLA_BR_MCAST_MLD_VERSION, K::U8}}};

const Table kVxlan{"vxlan",
                   {{"id", IFLA_VXLAN_ID, K::U32},
                    {"group", IFLA_VXLAN_GROUP, K::Addr},
                    {"link", IFLA_VXLAN_LINK, K::U32},
                    {"local", IFLA_VXLAN_LOCAL, K::Addr},
                    {"ttl", IFLA_VXLAN_TTL, K::U8},
                    {"tos", IFLA_VXLAN_TOS, K::U8},
                    {"learning", IFLA_VXLAN_LEARNING, K::U8},
                    {"ageing", IFLA_VXLAN_AGEING, K::U32},
                    {"limit", IFLA_VXLAN_LIMIT, K::U32},
                    {"portRange", IFLA_VXLAN_PORT_RANGE, K::Binary},
                    {"proxy", IFLA_VXLAN_PROXY, K::U8},
                    {"rsc", IFLA_VXLAN_RSC, K::U8},
                    {"l2miss", IFLA_VXLAN_L2MISS, K::U8},
                    {"l3miss", IFLA_VXLAN_L3MISS, K::U8},
                    {"port", IFLA_VXLAN_PORT, K::Be16},
                    {"group6", IFLA_VXLAN_GROUP6, K::Addr},
                    {"local6", IFLA_VXLAN_LOCAL6, K::Addr},
                    {"udpCsum", IFLA_VXLAN_UDP_CSUM, K::U8},
                    {"udpZeroCsum6Tx", IFLA_VXLAN_UDP_ZERO_CSUM6_TX, K::U8},
                    {"udpZeroCsum6Rx", IFLA_VXLAN_UDP_ZERO_CSUM6_RX, K::U8},
                    {"remcsumTx", IFLA_VXLAN_REMCSUM_TX, K::U8},
                    {"remcsumRx", IFLA_VXLAN_REMCSUM_RX, K::U8},
                    {"gbp", IFLA_VXLAN_GBP, K::Flag},
                    {"remcsumNopartial", IFLA_VXLAN_REMCSUM_NOPARTIAL, K::Flag},
                    {"collectMetadata", IFLA_VXLAN_COLLECT_METADATA, K::U8},
                    {"label", IFLA_VXLAN_LABEL, K::Be32},
                    {"gpe", IFLA_VXLAN_GPE, K::Flag},
                    {"ttlInherit", IFLA_VXLAN_TTL_INHERIT, K::U8},  // a flag on input, a u8 in dumps
                    {"df", IFLA_VXLAN_DF, K::U8}}};

const Table kMacvlan{"macvlan",
                     {{"mode", IFLA_MACVLAN_MODE, K::U32},
                      {"flags", IFLA_MACVLAN_FLAGS, K::U16},
                      {"macaddrMode", IFLA_MACVLAN_MACADDR_MODE, K::U32},
                      {"macaddr", IFLA_MACVLAN_MACADDR, K::Mac},
                      {"macaddrCount", IFLA_MACVLAN_MACADDR_COUNT, K::U32},
                      {"bcQueueLen", IFLA_MACVLAN_BC_QUEUE_LEN, K::U32},
                      {"bcQueueLenUsed", IFLA_MACVLAN_BC_QUEUE_LEN_USED, K::U32}}};

// IPVLAN_MODE_L2/L3/L3S in mode; IPVLAN_F_PRIVATE / IPVLAN_F_VEPA bits in flags.
const Table kIpvlan{"ipvlan", {{"mode", IFLA_IPVLAN_MODE, K::U16}, {"flags", IFLA_IPVLAN_FLAGS, K::U16}}};

// flags is struct ifla_vlan_flags; the QoS maps are nests of IFLA_VLAN_QOS_MAPPING structs:
// kept as bytes.
const Table kVlan{"vlan",
                  {{"id", IFLA_VLAN_ID, K::U16},
                   {"flags", IFLA_VLAN_FLAGS, K::Binary},
                   {"egressQos", IFLA_VLAN_EGRESS_QOS, K::Binary},
                   {"ingressQos", IFLA_VLAN_INGRESS_QOS, K::Binary},
                   {"protocol", IFLA_VLAN_PROTOCOL, K::Be16}}};

const Table kBridgePort{"bridgePort",
                        {{"state", IFLA_BRPORT_STATE, K::U8},
                         {"priority", IFLA_BRPORT_PRIORITY, K::U16},
                         {"cost", IFLA_BRPORT_COST, K::U32},
                         {"hairpin", IFLA_BRPORT_MODE, K::U8},
                         {"guard", IFLA_BRPORT_GUARD, K::U8},
                         {"protect", IFLA_BRPORT_PROTECT, K::U8},
                         {"fastLeave", IFLA_BRPORT_FAST_LEAVE, K::U8},
                         {"learning", IFLA_BRPORT_LEARNING, K::U8},
                         {"unicastFlood", IFLA_BRPORT_UNICAST_FLOOD, K::U8},
                         {"proxyarp", IFLA_BRPORT_PROXYARP, K::U8},
                         {"id", IFLA_BRPORT_ID, K::U16},
                         {"no", IFLA_BRPORT_NO, K::U16},
                         {"mcastFlood", IFLA_BRPORT_MCAST_FLOOD, K::U8},
                         {"mcastToUcast", IFLA_BRPORT_MCAST_TO_UCAST, K::U8},
                         {"bcastFlood", IFLA_BRPORT_BCAST_FLOOD, K::U8},
                         {"neighSuppress", IFLA_BRPORT_NEIGH_SUPPRESS, K::U8},
                         {"isolated", IFLA_BRPORT_ISOLATED, K::U8},
                         {"locked", IFLA_BRPORT_LOCKED, K::U8}}};

// macvtap shares macvlan's attributes, ipvtap ipvlan's.
const VariantSet kLinkKinds{{{"veth", &kVeth},
                             {"bridge", &kBridge},
                             {"vxlan", &kVxlan},
                             {"macvlan", &kMacvlan},
                             {"macvtap", &kMacvlan},
                             {"ipvlan", &kIpvlan},
                             {"ipvtap", &kIpvlan},
                             {"vlan", &kVlan}}};
const VariantSet kSlaveKinds{{{"bridge", &kBridgePort}}};

const Table kLinkInfo{"linkinfo",
                      {{"kind", IFLA_INFO_KIND, K::String},
                       {"data", IFLA_INFO_DATA, K::Variant, nullptr, nullptr, &kLinkKinds, "kind"},
                       {"xstats", IFLA_INFO_XSTATS, K::Binary},
                       {"slaveKind", IFLA_INFO_SLAVE_KIND, K::String},
                       {"slaveData", IFLA_INFO_SLAVE_DATA, K::Variant, nullptr, nullptr, &kSlaveKinds, "slaveKind"}}};

const Table kPropList{"propList", {{"altIfname", IFLA_ALT_IFNAME, K::String}}};

const Table kLink{"link",
                  {{"address", IFLA_ADDRESS, K::Mac},
                   {"broadcast", IFLA_BROADCAST, K::Mac},
                   {"ifname", IFLA_IFNAME, K::String},
                   {"mtu", IFLA_MTU, K::U32},
                   {"link", IFLA_LINK, K::U32},
                   {"qdisc", IFLA_QDISC, K::String},
                   {"stats", IFLA_STATS, K::Binary},
                   {"master", IFLA_MASTER, K::U32},
                   {"txqlen", IFLA_TXQLEN, K::U32},
                   {"map", IFLA_MAP, K::Binary},
                   {"operstate", IFLA_OPERSTATE, K::U8},
                   {"linkmode", IFLA_LINKMODE, K::U8},
                   {"linkinfo", IFLA_LINKINFO, K::Nested, &kLinkInfo},
                   {"netNsPid", IFLA_NET_NS_PID, K::U32},
                   {"ifalias", IFLA_IFALIAS, K::String},
                   {"numVf", IFLA_NUM_VF, K::U32},
                   {"stats64", IFLA_STATS64, K::Binary},
                   {"afSpec", IFLA_AF_SPEC, K::Binary},
                   {"group", IFLA_GROUP, K::U32},
                   {"netNsFd", IFLA_NET_NS_FD, K::U32},
                   {"extMask", IFLA_EXT_MASK, K::U32},
                   {"promiscuity", IFLA_PROMISCUITY, K::U32},
                   {"numTxQueues", IFLA_NUM_TX_QUEUES, K::U32},
                   {"numRxQueues", IFLA_NUM_RX_QUEUES, K::U32},
                   {"carrier", IFLA_CARRIER, K::U8},
                   {"physPortId", IFLA_PHYS_PORT_ID, K::Binary},
                   {"carrierChanges", IFLA_CARRIER_CHANGES, K::U32},
                   {"physSwitchId", IFLA_PHYS_SWITCH_ID, K::Binary},
                   {"linkNetnsid", IFLA_LINK_NETNSID, K::S32},
                   {"physPortName", IFLA_PHYS_PORT_NAME, K::String},
                   {"protoDown", IFLA_PROTO_DOWN, K::U8},
                   {"gsoMaxSegs", IFLA_GSO_MAX_SEGS, K::U32},
                   {"gsoMaxSize", IFLA_GSO_MAX_SIZE, K::U32},
                   {"xdp", IFLA_XDP, K::Binary},
                   {"event", IFLA_EVENT, K::U32},
                   {"newNetnsid", IFLA_NEW_NETNSID, K::S32},
                   {"targetNetnsid", IFLA_TARGET_NETNSID, K::S32},
                   {"carrierUpCount", IFLA_CARRIER_UP_COUNT, K::U32},
                   {"carrierDownCount", IFLA_CARRIER_DOWN_COUNT, K::U32},
                   {"newIfindex", IFLA_NEW_IFINDEX, K::S32},
                   {"minMtu", IFLA_MIN_MTU, K::U32},
                   {"maxMtu", IFLA_MAX_MTU, K::U32},
                   {"propList", IFLA_PROP_LIST, K::Nested, &kPropList},
                   {"altIfname", IFLA_ALT_IFNAME, K::String},
                   {"permAddress", IFLA_PERM_ADDRESS, K::Mac},
                   {"parentDevName", IFLA_PARENT_DEV_NAME, K::String},
                   {"parentDevBusName", IFLA_PARENT_DEV_BUS_NAME, K::String},
                   {"groMaxSize", IFLA_GRO_MAX_SIZE, K::U32},
                   {"tsoMaxSize", IFLA_TSO_MAX_SIZE, K::U32},
                   {"tsoMaxSegs", IFLA_TSO_MAX_SEGS, K::U32},
                   {"allmulti", IFLA_ALLMULTI, K::U32},
                   // Newer than the build host's headers (Linux 6.4 .. 6.13 if_link.h), by number:
                   {"devlinkPort", 62, K::Binary},
                   {"gsoIpv4MaxSize", 63, K::U32},
                   {"groIpv4MaxSize", 64, K::U32},
                   {"dpllPin", 65, K::Binary},
                   {"maxPacingOffloadHorizon", 66, K::U32},
                   {"netnsImmutable", 67, K::U8},
                   {"headroom", 68, K::U16},
                   {"tailroom", 69, K::U16}}};

}  // namespace

void RegisterLink(Registry& r) {
  r.Add({NETLINK_ROUTE, RTM_NEWLINK, "RTM_NEWLINK", &kIfinfomsg, &kLink});
  r.Add({NETLINK_ROUTE, RTM_DELLINK, "RTM_DELLINK", &kIfinfomsg, &kLink});
  r.Add({NETLINK_ROUTE, RTM_GETLINK, "RTM_GETLINK", &kIfinfomsg, &kLink});
  r.Add({NETLINK_ROUTE, RTM_SETLINK, "RTM_SETLINK", &kIfinfomsg, &kLink});
}

}  // namespace nl
