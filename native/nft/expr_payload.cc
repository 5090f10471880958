// Expressions that read and compare packet data: payload, cmp, bitwise, range.
#include <linux/netfilter/nf_tables.h>

#include "nft.h"

namespace nl {
namespace {

using K = Kind;

const Table kPayload{"payload",
                     {{"dreg", NFTA_PAYLOAD_DREG, K::Be32},
                      {"base", NFTA_PAYLOAD_BASE, K::Be32},
                      {"offset", NFTA_PAYLOAD_OFFSET, K::Be32},
                      {"len", NFTA_PAYLOAD_LEN, K::Be32},
                      {"sreg", NFTA_PAYLOAD_SREG, K::Be32},
                      {"csumType", NFTA_PAYLOAD_CSUM_TYPE, K::Be32},
                      {"csumOffset", NFTA_PAYLOAD_CSUM_OFFSET, K::Be32},
                      {"csumFlags", NFTA_PAYLOAD_CSUM_FLAGS, K::Be32}}};

const Table kCmp{
    "cmp",
    {{"sreg", NFTA_CMP_SREG, K::Be32}, {"op", NFTA_CMP_OP, K::Be32}, {"data", NFTA_CMP_DATA, K::Nested, &kNftData}}};

const Table kBitwise{"bitwise",
                     {{"sreg", NFTA_BITWISE_SREG, K::Be32},
                      {"dreg", NFTA_BITWISE_DREG, K::Be32},
                      {"len", NFTA_BITWISE_LEN, K::Be32},
                      {"mask", NFTA_BITWISE_MASK, K::Nested, &kNftData},
                      {"xor", NFTA_BITWISE_XOR, K::Nested, &kNftData},
                      {"op", NFTA_BITWISE_OP, K::Be32},
                      {"data", NFTA_BITWISE_DATA, K::Nested, &kNftData}}};

const Table kRange{"range",
                   {{"sreg", NFTA_RANGE_SREG, K::Be32},
                    {"op", NFTA_RANGE_OP, K::Be32},
                    {"fromData", NFTA_RANGE_FROM_DATA, K::Nested, &kNftData},
                    {"toData", NFTA_RANGE_TO_DATA, K::Nested, &kNftData}}};

}  // namespace

void AddPayloadExprs(ExprTables& t) {
  t.push_back({"payload", &kPayload});
  t.push_back({"cmp", &kCmp});
  t.push_back({"bitwise", &kBitwise});
  t.push_back({"range", &kRange});
}

}  // namespace nl
