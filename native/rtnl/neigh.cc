// RTM_NEWNEIGH / RTM_DELNEIGH / RTM_GETNEIGH: struct ndmsg + NDA_* attributes. The same
// messages with family AF_BRIDGE are the bridge forwarding database (FDB).
// Reference: include/uapi/linux/neighbour.h.
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include <cstddef>

#include "../netlink/schema.h"
#include "rtnl.h"

namespace nl {
namespace {

using K = Kind;

const Struct kNdmsg{"ndmsg",
                    sizeof(ndmsg),
                    {{"family", offsetof(ndmsg, ndm_family), 1, false},
                     {"ifindex", offsetof(ndmsg, ndm_ifindex), 4, true},
                     {"state", offsetof(ndmsg, ndm_state), 2, false},
                     {"flags", offsetof(ndmsg, ndm_flags), 1, false},
                     {"type", offsetof(ndmsg, ndm_type), 1, false}}};

const Table kNeigh{"neigh",
                   {{"dst", NDA_DST, K::Addr},
                    {"lladdr", NDA_LLADDR, K::Mac},
                    {"cacheinfo", NDA_CACHEINFO, K::Binary},
                    {"probes", NDA_PROBES, K::U32},
                    {"vlan", NDA_VLAN, K::U16},
                    {"port", NDA_PORT, K::Be16},
                    {"vni", NDA_VNI, K::U32},
                    {"ifindex", NDA_IFINDEX, K::U32},
                    {"master", NDA_MASTER, K::U32},
                    {"linkNetnsid", NDA_LINK_NETNSID, K::S32},
                    {"srcVni", NDA_SRC_VNI, K::U32},
                    {"protocol", NDA_PROTOCOL, K::U8},
                    {"nhId", NDA_NH_ID, K::U32},
                    {"fdbExtAttrs", NDA_FDB_EXT_ATTRS, K::Binary},
                    {"flagsExt", NDA_FLAGS_EXT, K::U32},
                    {"ndmStateMask", NDA_NDM_STATE_MASK, K::U16},
                    {"ndmFlagsMask", NDA_NDM_FLAGS_MASK, K::U8}}};

}  // namespace

void RegisterNeigh(Registry& r) {
  r.Add({NETLINK_ROUTE, RTM_NEWNEIGH, "RTM_NEWNEIGH", &kNdmsg, &kNeigh});
  r.Add({NETLINK_ROUTE, RTM_DELNEIGH, "RTM_DELNEIGH", &kNdmsg, &kNeigh});
  r.Add({NETLINK_ROUTE, RTM_GETNEIGH, "RTM_GETNEIGH", &kNdmsg, &kNeigh});
}

}  // namespace nl
