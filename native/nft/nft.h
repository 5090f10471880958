// nf_tables message schemas (NETLINK_NETFILTER, subsystem NFNL_SUBSYS_NFTABLES): objects in
// objects.cc, one file per expression family (expr_*.cc) registering its tables by name.
// Reference: include/uapi/linux/netfilter/nf_tables.h, nfnetlink.h.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "../netlink/schema.h"

namespace nl {

// struct nfgenmsg: family, version, res_id (big-endian: the subsystem for batch messages).
extern const Struct kNfgenmsg;
// NFTA_DATA_*: a value (raw bytes) or a verdict.
extern const Table kNftData;

using ExprTables = std::vector<std::pair<std::string, const Table*>>;
void AddPayloadExprs(ExprTables& t);  // payload, cmp, bitwise, range
void AddMetaExprs(ExprTables& t);     // meta, ct, fib
void AddVerdictExprs(ExprTables& t);  // immediate, lookup, dynset, objref
void AddNatExprs(ExprTables& t);      // nat, masq, redir
void AddMiscExprs(ExprTables& t);     // counter, log, reject, limit

void RegisterNftables(Registry& r);

}  // namespace nl
