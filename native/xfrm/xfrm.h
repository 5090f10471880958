// XFRM message schemas (NETLINK_XFRM): the few IPsec state messages nsnet sends.
// Reference: include/uapi/linux/xfrm.h.
#pragma once

#include "../netlink/schema.h"

namespace nl {
void RegisterXfrm(Registry& r);
}  // namespace nl
