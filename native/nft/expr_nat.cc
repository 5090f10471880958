// Address translation: nat (snat/dnat from registers), masq, redir.
#include <linux/netfilter/nf_tables.h>

#include "nft.h"

namespace nl {
namespace {

using K = Kind;

const Table kNat{"nat",
                 {{"type", NFTA_NAT_TYPE, K::Be32},
                  {"family", NFTA_NAT_FAMILY, K::Be32},
                  {"regAddrMin", NFTA_NAT_REG_ADDR_MIN, K::Be32},
                  {"regAddrMax", NFTA_NAT_REG_ADDR_MAX, K::Be32},
                  {"regProtoMin", NFTA_NAT_REG_PROTO_MIN, K::Be32},
                  {"regProtoMax", NFTA_NAT_REG_PROTO_MAX, K::Be32},
                  {"flags", NFTA_NAT_FLAGS, K::Be32}}};

const Table kMasq{"masq",
                  {{"flags", NFTA_MASQ_FLAGS, K::Be32},
                   {"regProtoMin", NFTA_MASQ_REG_PROTO_MIN, K::Be32},
                   {"regProtoMax", NFTA_MASQ_REG_PROTO_MAX, K::Be32}}};

const Table kRedir{"redir",
                   {{"regProtoMin", NFTA_REDIR_REG_PROTO_MIN, K::Be32},
                    {"regProtoMax", NFTA_REDIR_REG_PROTO_MAX, K::Be32},
                    {"flags", NFTA_REDIR_FLAGS, K::Be32}}};

}  // namespace

void AddNatExprs(ExprTables& t) {
  t.push_back({"nat", &kNat});
  t.push_back({"masq", &kMasq});
  t.push_back({"redir", &kRedir});
}

}  // namespace nl
