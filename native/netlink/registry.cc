#include <linux/netlink.h>

#include <string>

#include "../ct/ct.h"
#include "../diag/diag.h"
#include "../nft/nft.h"
#include "../rtnl/rtnl.h"
#include "../xfrm/xfrm.h"
#include "schema.h"

namespace nl {

const Registry& Registry::Get() {
  // Built once, on first use, thread-safely (C++11 static initialization); never mutated after.
  static const Registry registry = [] {
    Registry r;
    RegisterLink(r);
    RegisterAddr(r);
    RegisterRoute(r);
    RegisterNeigh(r);
    RegisterNftables(r);
    RegisterInetDiag(r);
    RegisterConntrack(r);
    RegisterXfrm(r);
    return r;
  }();
  return registry;
}

std::string MessageName(int protocol, uint16_t type) {
  switch (type) {
    case NLMSG_NOOP:
      return "NLMSG_NOOP";
    case NLMSG_ERROR:
      return "NLMSG_ERROR";
    case NLMSG_DONE:
      return "NLMSG_DONE";
    case NLMSG_OVERRUN:
      return "NLMSG_OVERRUN";
    default:
      break;
  }
  if (const MessageSpec* m = Registry::Get().Find(protocol, type)) return m->name;
  return "MSG_" + std::to_string(type);
}

}  // namespace nl
