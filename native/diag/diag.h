#pragma once

#include "../netlink/schema.h"

namespace nl {
void RegisterInetDiag(Registry& r);
}  // namespace nl
