// nf_tables objects: tables, chains, rules, sets, set elements, the generation, and the
// batch delimiters. Numeric attributes are big-endian on the wire (NLA_BE32 / NLA_BE64).
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include <cstddef>

#include "nft.h"

namespace nl {

using K = Kind;

const Struct kNfgenmsg{"nfgenmsg",
                       sizeof(nfgenmsg),
                       {{"family", offsetof(nfgenmsg, nfgen_family), 1, false},
                        {"version", offsetof(nfgenmsg, version), 1, false},
                        {"resId", offsetof(nfgenmsg, res_id), 2, false, true}}};

namespace {

const Table kVerdict{"verdict",
                     {{"code", NFTA_VERDICT_CODE, K::SBe32},
                      {"chain", NFTA_VERDICT_CHAIN, K::String},
                      {"chainId", NFTA_VERDICT_CHAIN_ID, K::Be32}}};

}  // namespace

const Table kNftData{"data",
                     {{"value", NFTA_DATA_VALUE, K::Binary}, {"verdict", NFTA_DATA_VERDICT, K::Nested, &kVerdict}}};

namespace {

const Table kTable{"table",
                   {{"name", NFTA_TABLE_NAME, K::String},
                    {"flags", NFTA_TABLE_FLAGS, K::Be32},
                    {"use", NFTA_TABLE_USE, K::Be32},
                    {"handle", NFTA_TABLE_HANDLE, K::Be64},
                    {"userdata", NFTA_TABLE_USERDATA, K::Binary},
                    {"owner", NFTA_TABLE_OWNER, K::Be32}}};

const Table kHook{"hook",
                  {{"hooknum", NFTA_HOOK_HOOKNUM, K::Be32},
                   {"priority", NFTA_HOOK_PRIORITY, K::SBe32},
                   {"dev", NFTA_HOOK_DEV, K::String},
                   {"devs", NFTA_HOOK_DEVS, K::Binary}}};

const Table kCounters{"counters", {{"bytes", NFTA_COUNTER_BYTES, K::Be64}, {"packets", NFTA_COUNTER_PACKETS, K::Be64}}};

const Table kChain{"chain",
                   {{"table", NFTA_CHAIN_TABLE, K::String},
                    {"handle", NFTA_CHAIN_HANDLE, K::Be64},
                    {"name", NFTA_CHAIN_NAME, K::String},
                    {"hook", NFTA_CHAIN_HOOK, K::Nested, &kHook},
                    {"policy", NFTA_CHAIN_POLICY, K::Be32},
                    {"use", NFTA_CHAIN_USE, K::Be32},
                    {"type", NFTA_CHAIN_TYPE, K::String},
                    {"counters", NFTA_CHAIN_COUNTERS, K::Nested, &kCounters},
                    {"flags", NFTA_CHAIN_FLAGS, K::Be32},
                    {"id", NFTA_CHAIN_ID, K::Be32},
                    {"userdata", NFTA_CHAIN_USERDATA, K::Binary}}};

ExprTables AllExprs() {
  ExprTables t;
  AddPayloadExprs(t);
  AddMetaExprs(t);
  AddVerdictExprs(t);
  AddNatExprs(t);
  AddMiscExprs(t);
  return t;
}

const VariantSet kExprKinds{AllExprs()};

// One expression: its name selects the table of its data.
const Table kExpr{
    "expr",
    {{"name", NFTA_EXPR_NAME, K::String}, {"data", NFTA_EXPR_DATA, K::Variant, nullptr, nullptr, &kExprKinds, "name"}}};

const Table kRule{"rule",
                  {{"table", NFTA_RULE_TABLE, K::String},
                   {"chain", NFTA_RULE_CHAIN, K::String},
                   {"handle", NFTA_RULE_HANDLE, K::Be64},
                   {"expressions", NFTA_RULE_EXPRESSIONS, K::List, &kExpr},
                   {"compat", NFTA_RULE_COMPAT, K::Binary},
                   {"position", NFTA_RULE_POSITION, K::Be64},
                   {"userdata", NFTA_RULE_USERDATA, K::Binary},
                   {"id", NFTA_RULE_ID, K::Be32},
                   {"positionId", NFTA_RULE_POSITION_ID, K::Be32},
                   {"chainId", NFTA_RULE_CHAIN_ID, K::Be32}}};

const Table kSetField{"field", {{"len", NFTA_SET_FIELD_LEN, K::Be32}}};

const Table kSetDesc{"setDesc",
                     {{"size", NFTA_SET_DESC_SIZE, K::Be32}, {"concat", NFTA_SET_DESC_CONCAT, K::List, &kSetField}}};

const Table kSet{"set",
                 {{"table", NFTA_SET_TABLE, K::String},
                  {"name", NFTA_SET_NAME, K::String},
                  {"flags", NFTA_SET_FLAGS, K::Be32},
                  {"keyType", NFTA_SET_KEY_TYPE, K::Be32},
                  {"keyLen", NFTA_SET_KEY_LEN, K::Be32},
                  {"dataType", NFTA_SET_DATA_TYPE, K::Be32},
                  {"dataLen", NFTA_SET_DATA_LEN, K::Be32},
                  {"policy", NFTA_SET_POLICY, K::Be32},
                  {"desc", NFTA_SET_DESC, K::Nested, &kSetDesc},
                  {"id", NFTA_SET_ID, K::Be32},
                  {"timeout", NFTA_SET_TIMEOUT, K::Be64},
                  {"gcInterval", NFTA_SET_GC_INTERVAL, K::Be32},
                  {"userdata", NFTA_SET_USERDATA, K::Binary},
                  {"objType", NFTA_SET_OBJ_TYPE, K::Be32},
                  {"handle", NFTA_SET_HANDLE, K::Be64},
                  {"expr", NFTA_SET_EXPR, K::Nested, &kExpr},
                  {"expressions", NFTA_SET_EXPRESSIONS, K::List, &kExpr}}};

const Table kSetElem{"setElem",
                     {{"key", NFTA_SET_ELEM_KEY, K::Nested, &kNftData},
                      {"data", NFTA_SET_ELEM_DATA, K::Nested, &kNftData},
                      {"flags", NFTA_SET_ELEM_FLAGS, K::Be32},
                      {"timeout", NFTA_SET_ELEM_TIMEOUT, K::Be64},
                      {"expiration", NFTA_SET_ELEM_EXPIRATION, K::Be64},
                      {"userdata", NFTA_SET_ELEM_USERDATA, K::Binary},
                      {"expr", NFTA_SET_ELEM_EXPR, K::Nested, &kExpr},
                      {"objref", NFTA_SET_ELEM_OBJREF, K::String},
                      {"keyEnd", NFTA_SET_ELEM_KEY_END, K::Nested, &kNftData},
                      {"expressions", NFTA_SET_ELEM_EXPRESSIONS, K::List, &kExpr}}};

const Table kSetElemList{"setElemList",
                         {{"table", NFTA_SET_ELEM_LIST_TABLE, K::String},
                          {"set", NFTA_SET_ELEM_LIST_SET, K::String},
                          {"elements", NFTA_SET_ELEM_LIST_ELEMENTS, K::List, &kSetElem},
                          {"setId", NFTA_SET_ELEM_LIST_SET_ID, K::Be32}}};

const Table kGen{"gen",
                 {{"id", NFTA_GEN_ID, K::Be32},
                  {"procPid", NFTA_GEN_PROC_PID, K::Be32},
                  {"procName", NFTA_GEN_PROC_NAME, K::String}}};

const Table kEmpty{"batch", {}};

constexpr uint16_t Msg(int m) { return static_cast<uint16_t>(NFNL_SUBSYS_NFTABLES << 8 | m); }

}  // namespace

void RegisterNftables(Registry& r) {
  const int p = NETLINK_NETFILTER;
  r.Add({p, NFNL_MSG_BATCH_BEGIN, "NFNL_MSG_BATCH_BEGIN", &kNfgenmsg, &kEmpty});
  r.Add({p, NFNL_MSG_BATCH_END, "NFNL_MSG_BATCH_END", &kNfgenmsg, &kEmpty});
  r.Add({p, Msg(NFT_MSG_NEWTABLE), "NFT_MSG_NEWTABLE", &kNfgenmsg, &kTable});
  r.Add({p, Msg(NFT_MSG_GETTABLE), "NFT_MSG_GETTABLE", &kNfgenmsg, &kTable});
  r.Add({p, Msg(NFT_MSG_DELTABLE), "NFT_MSG_DELTABLE", &kNfgenmsg, &kTable});
  r.Add({p, Msg(NFT_MSG_NEWCHAIN), "NFT_MSG_NEWCHAIN", &kNfgenmsg, &kChain});
  r.Add({p, Msg(NFT_MSG_GETCHAIN), "NFT_MSG_GETCHAIN", &kNfgenmsg, &kChain});
  r.Add({p, Msg(NFT_MSG_DELCHAIN), "NFT_MSG_DELCHAIN", &kNfgenmsg, &kChain});
  r.Add({p, Msg(NFT_MSG_NEWRULE), "NFT_MSG_NEWRULE", &kNfgenmsg, &kRule});
  r.Add({p, Msg(NFT_MSG_GETRULE), "NFT_MSG_GETRULE", &kNfgenmsg, &kRule});
  r.Add({p, Msg(NFT_MSG_DELRULE), "NFT_MSG_DELRULE", &kNfgenmsg, &kRule});
  r.Add({p, Msg(NFT_MSG_NEWSET), "NFT_MSG_NEWSET", &kNfgenmsg, &kSet});
  r.Add({p, Msg(NFT_MSG_GETSET), "NFT_MSG_GETSET", &kNfgenmsg, &kSet});
  r.Add({p, Msg(NFT_MSG_DELSET), "NFT_MSG_DELSET", &kNfgenmsg, &kSet});
  r.Add({p, Msg(NFT_MSG_NEWSETELEM), "NFT_MSG_NEWSETELEM", &kNfgenmsg, &kSetElemList});
  r.Add({p, Msg(NFT_MSG_GETSETELEM), "NFT_MSG_GETSETELEM", &kNfgenmsg, &kSetElemList});
  r.Add({p, Msg(NFT_MSG_DELSETELEM), "NFT_MSG_DELSETELEM", &kNfgenmsg, &kSetElemList});
  r.Add({p, Msg(NFT_MSG_NEWGEN), "NFT_MSG_NEWGEN", &kNfgenmsg, &kGen});
  r.Add({p, Msg(NFT_MSG_GETGEN), "NFT_MSG_GETGEN", &kNfgenmsg, &kGen});
}

}  // namespace nl
