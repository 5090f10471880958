// ctnetlink message schemas (NETLINK_NETFILTER, subsystem NFNL_SUBSYS_CTNETLINK): conntrack
// entries, their tuples and per-protocol state, and the statistics messages.
// Reference: include/uapi/linux/netfilter/nfnetlink_conntrack.h, nfnetlink.h.
#pragma once

#include "../netlink/schema.h"

namespace nl {

void RegisterConntrack(Registry& r);

}  // namespace nl
