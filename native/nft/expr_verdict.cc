// Expressions that decide or look things up: immediate (values and verdicts), lookup (sets and
// maps), dynset (add to a set from the packet path), objref (named objects).
#include <linux/netfilter/nf_tables.h>

#include "nft.h"

namespace nl {
namespace {

using K = Kind;

const Table kImmediate{"immediate",
                       {{"dreg", NFTA_IMMEDIATE_DREG, K::Be32}, {"data", NFTA_IMMEDIATE_DATA, K::Nested, &kNftData}}};

const Table kLookup{"lookup",
                    {{"set", NFTA_LOOKUP_SET, K::String},
                     {"sreg", NFTA_LOOKUP_SREG, K::Be32},
                     {"dreg", NFTA_LOOKUP_DREG, K::Be32},
                     {"setId", NFTA_LOOKUP_SET_ID, K::Be32},
                     {"flags", NFTA_LOOKUP_FLAGS, K::Be32}}};

const Table kDynset{"dynset",
                    {{"setName", NFTA_DYNSET_SET_NAME, K::String},
                     {"setId", NFTA_DYNSET_SET_ID, K::Be32},
                     {"op", NFTA_DYNSET_OP, K::Be32},
                     {"sregKey", NFTA_DYNSET_SREG_KEY, K::Be32},
                     {"sregData", NFTA_DYNSET_SREG_DATA, K::Be32},
                     {"timeout", NFTA_DYNSET_TIMEOUT, K::Be64},
                     {"flags", NFTA_DYNSET_FLAGS, K::Be32}}};

const Table kObjref{"objref",
                    {{"immType", NFTA_OBJREF_IMM_TYPE, K::Be32},
                     {"immName", NFTA_OBJREF_IMM_NAME, K::String},
                     {"setSreg", NFTA_OBJREF_SET_SREG, K::Be32},
                     {"setName", NFTA_OBJREF_SET_NAME, K::String},
                     {"setId", NFTA_OBJREF_SET_ID, K::Be32}}};

}  // namespace

void AddVerdictExprs(ExprTables& t) {
  t.push_back({"immediate", &kImmediate});
  t.push_back({"lookup", &kLookup});
  t.push_back({"dynset", &kDynset});
  t.push_back({"objref", &kObjref});
}

}  // namespace nl
