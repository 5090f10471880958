// Registration of the rtnetlink message schemas (one file per object).
#pragma once

#include "../netlink/schema.h"

namespace nl {
void RegisterLink(Registry& r);
void RegisterAddr(Registry& r);
void RegisterRoute(Registry& r);
void RegisterNeigh(Registry& r);
}  // namespace nl
