// Expressions that load packet metadata: meta, ct (conntrack state), fib (route lookups).
#include <linux/netfilter/nf_tables.h>

#include "nft.h"

namespace nl {
namespace {

using K = Kind;

const Table kMeta{
    "meta", {{"dreg", NFTA_META_DREG, K::Be32}, {"key", NFTA_META_KEY, K::Be32}, {"sreg", NFTA_META_SREG, K::Be32}}};

const Table kCt{"ct",
                {{"dreg", NFTA_CT_DREG, K::Be32},
                 {"key", NFTA_CT_KEY, K::Be32},
                 {"direction", NFTA_CT_DIRECTION, K::U8},
                 {"sreg", NFTA_CT_SREG, K::Be32}}};

const Table kFib{
    "fib",
    {{"dreg", NFTA_FIB_DREG, K::Be32}, {"result", NFTA_FIB_RESULT, K::Be32}, {"flags", NFTA_FIB_FLAGS, K::Be32}}};

}  // namespace

void AddMetaExprs(ExprTables& t) {
  t.push_back({"meta", &kMeta});
  t.push_back({"ct", &kCt});
  t.push_back({"fib", &kFib});
}

}  // namespace nl
