// RTM_NEWADDR / RTM_DELADDR / RTM_GETADDR: struct ifaddrmsg + IFA_* attributes.
// Reference: include/uapi/linux/if_addr.h.
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

#include <cstddef>

#include "../netlink/schema.h"
#include "rtnl.h"

namespace nl {
namespace {

using K = Kind;

const Struct kIfaddrmsg{"ifaddrmsg",
                        sizeof(ifaddrmsg),
                        {{"family", offsetof(ifaddrmsg, ifa_family), 1, false},
                         {"prefixlen", offsetof(ifaddrmsg, ifa_prefixlen), 1, false},
                         {"flags", offsetof(ifaddrmsg, ifa_flags), 1, false},
                         {"scope", offsetof(ifaddrmsg, ifa_scope), 1, false},
                         {"index", offsetof(ifaddrmsg, ifa_index), 4, false}}};

const Table kAddr{"addr",
                  {{"address", IFA_ADDRESS, K::Addr},
                   {"local", IFA_LOCAL, K::Addr},
                   {"label", IFA_LABEL, K::String},
                   {"broadcast", IFA_BROADCAST, K::Addr},
                   {"anycast", IFA_ANYCAST, K::Addr},
                   {"cacheinfo", IFA_CACHEINFO, K::Binary},
                   {"multicast", IFA_MULTICAST, K::Addr},
                   {"flags", IFA_FLAGS, K::U32},
                   {"rtPriority", IFA_RT_PRIORITY, K::U32},
                   {"targetNetnsid", IFA_TARGET_NETNSID, K::S32},
                   {"proto", IFA_PROTO, K::U8}}};

}  // namespace

void RegisterAddr(Registry& r) {
  r.Add({NETLINK_ROUTE, RTM_NEWADDR, "RTM_NEWADDR", &kIfaddrmsg, &kAddr});
  r.Add({NETLINK_ROUTE, RTM_DELADDR, "RTM_DELADDR", &kIfaddrmsg, &kAddr});
  r.Add({NETLINK_ROUTE, RTM_GETADDR, "RTM_GETADDR", &kIfaddrmsg, &kAddr});
}

}  // namespace nl
