// Statements that count, log, reject or rate-limit: counter, log, reject, limit.
#include <linux/netfilter/nf_tables.h>

#include "nft.h"

namespace nl {
namespace {

using K = Kind;

const Table kCounter{"counter", {{"bytes", NFTA_COUNTER_BYTES, K::Be64}, {"packets", NFTA_COUNTER_PACKETS, K::Be64}}};

const Table kLog{"log",
                 {{"group", NFTA_LOG_GROUP, K::Be16},
                  {"prefix", NFTA_LOG_PREFIX, K::String},
                  {"snaplen", NFTA_LOG_SNAPLEN, K::Be32},
                  {"qthreshold", NFTA_LOG_QTHRESHOLD, K::Be16},
                  {"level", NFTA_LOG_LEVEL, K::Be32},
                  {"flags", NFTA_LOG_FLAGS, K::Be32}}};

const Table kReject{"reject", {{"type", NFTA_REJECT_TYPE, K::Be32}, {"icmpCode", NFTA_REJECT_ICMP_CODE, K::U8}}};

const Table kLimit{"limit",
                   {{"rate", NFTA_LIMIT_RATE, K::Be64},
                    {"unit", NFTA_LIMIT_UNIT, K::Be64},
                    {"burst", NFTA_LIMIT_BURST, K::Be32},
                    {"type", NFTA_LIMIT_TYPE, K::Be32},
                    {"flags", NFTA_LIMIT_FLAGS, K::Be32}}};

}  // namespace

void AddMiscExprs(ExprTables& t) {
  t.push_back({"counter", &kCounter});
  t.push_back({"log", &kLog});
  t.push_back({"reject", &kReject});
  t.push_back({"limit", &kLimit});
}

}  // namespace nl
