// ctnetlink: IPCTNL_MSG_CT_* messages, a struct nfgenmsg (the L3 family) followed by CTA_*
// attributes. Dumps answer with IPCTNL_MSG_CT_NEW messages. Numeric attributes are big-endian
// on the wire except the CTA_FILTER flags (NLA_U32).
// Reference: include/uapi/linux/netfilter/nfnetlink_conntrack.h, net/netfilter/nf_conntrack_netlink.c.
#include "ct.h"

#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>

#include "../nft/nft.h"

namespace nl {
namespace {

using K = Kind;

// CTA_TUPLE_IP: one family's pair of addresses.
const Table kTupleIp{"tupleIp",
                     {{"v4Src", CTA_IP_V4_SRC, K::Addr},
                      {"v4Dst", CTA_IP_V4_DST, K::Addr},
                      {"v6Src", CTA_IP_V6_SRC, K::Addr},
                      {"v6Dst", CTA_IP_V6_DST, K::Addr}}};

// CTA_TUPLE_PROTO: the L4 protocol and its part of the tuple (ports, or ICMP id/type/code).
const Table kTupleProto{"tupleProto",
                        {{"num", CTA_PROTO_NUM, K::U8},
                         {"srcPort", CTA_PROTO_SRC_PORT, K::Be16},
                         {"dstPort", CTA_PROTO_DST_PORT, K::Be16},
                         {"icmpId", CTA_PROTO_ICMP_ID, K::Be16},
                         {"icmpType", CTA_PROTO_ICMP_TYPE, K::U8},
                         {"icmpCode", CTA_PROTO_ICMP_CODE, K::U8},
                         {"icmpv6Id", CTA_PROTO_ICMPV6_ID, K::Be16},
                         {"icmpv6Type", CTA_PROTO_ICMPV6_TYPE, K::U8},
                         {"icmpv6Code", CTA_PROTO_ICMPV6_CODE, K::U8}}};

const Table kTuple{"tuple",
                   {{"ip", CTA_TUPLE_IP, K::Nested, &kTupleIp},
                    {"proto", CTA_TUPLE_PROTO, K::Nested, &kTupleProto},
                    {"zone", CTA_TUPLE_ZONE, K::Be16}}};

const Table kProtoinfoTcp{"protoinfoTcp",
                          {{"state", CTA_PROTOINFO_TCP_STATE, K::U8},
                           {"wscaleOriginal", CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, K::U8},
                           {"wscaleReply", CTA_PROTOINFO_TCP_WSCALE_REPLY, K::U8},
                           {"flagsOriginal", CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, K::Binary},  // struct nf_ct_tcp_flags
                           {"flagsReply", CTA_PROTOINFO_TCP_FLAGS_REPLY, K::Binary}}};

const Table kProtoinfoDccp{"protoinfoDccp",
                           {{"state", CTA_PROTOINFO_DCCP_STATE, K::U8},
                            {"role", CTA_PROTOINFO_DCCP_ROLE, K::U8},
                            {"handshakeSeq", CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ, K::Be64}}};

const Table kProtoinfoSctp{"protoinfoSctp",
                           {{"state", CTA_PROTOINFO_SCTP_STATE, K::U8},
                            {"vtagOriginal", CTA_PROTOINFO_SCTP_VTAG_ORIGINAL, K::Be32},
                            {"vtagReply", CTA_PROTOINFO_SCTP_VTAG_REPLY, K::Be32}}};

const Table kProtoinfo{"protoinfo",
                       {{"tcp", CTA_PROTOINFO_TCP, K::Nested, &kProtoinfoTcp},
                        {"dccp", CTA_PROTOINFO_DCCP, K::Nested, &kProtoinfoDccp},
                        {"sctp", CTA_PROTOINFO_SCTP, K::Nested, &kProtoinfoSctp}}};

const Table kHelp{"help", {{"name", CTA_HELP_NAME, K::String}, {"info", CTA_HELP_INFO, K::Binary}}};

const Table kProtoNat{"protoNat",
                      {{"portMin", CTA_PROTONAT_PORT_MIN, K::Be16}, {"portMax", CTA_PROTONAT_PORT_MAX, K::Be16}}};

const Table kNat{"nat",
                 {{"v4MinIp", CTA_NAT_V4_MINIP, K::Addr},
                  {"v4MaxIp", CTA_NAT_V4_MAXIP, K::Addr},
                  {"proto", CTA_NAT_PROTO, K::Nested, &kProtoNat},
                  {"v6MinIp", CTA_NAT_V6_MINIP, K::Addr},
                  {"v6MaxIp", CTA_NAT_V6_MAXIP, K::Addr}}};

// Accounting (present when net.netfilter.nf_conntrack_acct is on).
const Table kCounters{"counters",
                      {{"packets", CTA_COUNTERS_PACKETS, K::Be64},
                       {"bytes", CTA_COUNTERS_BYTES, K::Be64},
                       {"packets32", CTA_COUNTERS32_PACKETS, K::Be32},
                       {"bytes32", CTA_COUNTERS32_BYTES, K::Be32}}};

const Table kSeqAdj{"seqAdj",
                    {{"correctionPos", CTA_SEQADJ_CORRECTION_POS, K::Be32},
                     {"offsetBefore", CTA_SEQADJ_OFFSET_BEFORE, K::Be32},
                     {"offsetAfter", CTA_SEQADJ_OFFSET_AFTER, K::Be32}}};

const Table kSecctx{"secctx", {{"name", CTA_SECCTX_NAME, K::String}}};

// Nanoseconds since the epoch (net.netfilter.nf_conntrack_timestamp).
const Table kTimestamp{"timestamp", {{"start", CTA_TIMESTAMP_START, K::Be64}, {"stop", CTA_TIMESTAMP_STOP, K::Be64}}};

const Table kSynproxy{
    "synproxy",
    {{"isn", CTA_SYNPROXY_ISN, K::Be32}, {"its", CTA_SYNPROXY_ITS, K::Be32}, {"tsoff", CTA_SYNPROXY_TSOFF, K::Be32}}};

// CTA_FILTER: which tuple attributes of the request a dump or flush must match (CTA_FILTER_FLAG_*).
const Table kFilter{"filter",
                    {{"origFlags", CTA_FILTER_ORIG_FLAGS, K::U32}, {"replyFlags", CTA_FILTER_REPLY_FLAGS, K::U32}}};

const Table kConntrack{"conntrack",
                       {{"tupleOrig", CTA_TUPLE_ORIG, K::Nested, &kTuple},
                        {"tupleReply", CTA_TUPLE_REPLY, K::Nested, &kTuple},
                        {"status", CTA_STATUS, K::Be32},
                        {"protoinfo", CTA_PROTOINFO, K::Nested, &kProtoinfo},
                        {"help", CTA_HELP, K::Nested, &kHelp},
                        {"natSrc", CTA_NAT_SRC, K::Nested, &kNat},
                        {"timeout", CTA_TIMEOUT, K::Be32},
                        {"mark", CTA_MARK, K::Be32},
                        {"countersOrig", CTA_COUNTERS_ORIG, K::Nested, &kCounters},
                        {"countersReply", CTA_COUNTERS_REPLY, K::Nested, &kCounters},
                        {"use", CTA_USE, K::Be32},
                        {"id", CTA_ID, K::Be32},
                        {"natDst", CTA_NAT_DST, K::Nested, &kNat},
                        {"tupleMaster", CTA_TUPLE_MASTER, K::Nested, &kTuple},
                        {"seqAdjOrig", CTA_SEQ_ADJ_ORIG, K::Nested, &kSeqAdj},
                        {"seqAdjReply", CTA_SEQ_ADJ_REPLY, K::Nested, &kSeqAdj},
                        {"secmark", CTA_SECMARK, K::Be32},
                        {"zone", CTA_ZONE, K::Be16},
                        {"secctx", CTA_SECCTX, K::Nested, &kSecctx},
                        {"timestamp", CTA_TIMESTAMP, K::Nested, &kTimestamp},
                        {"markMask", CTA_MARK_MASK, K::Be32},
                        {"labels", CTA_LABELS, K::Binary},
                        {"labelsMask", CTA_LABELS_MASK, K::Binary},
                        {"synproxy", CTA_SYNPROXY, K::Nested, &kSynproxy},
                        {"filter", CTA_FILTER, K::Nested, &kFilter},
                        {"statusMask", CTA_STATUS_MASK, K::Be32}}};

// IPCTNL_MSG_CT_GET_STATS_CPU: one message per CPU (nfgenmsg.res_id is the CPU number).
const Table kStatsCpu{"statsCpu",
                      {{"searched", CTA_STATS_SEARCHED, K::Be32},
                       {"found", CTA_STATS_FOUND, K::Be32},
                       {"new", CTA_STATS_NEW, K::Be32},
                       {"invalid", CTA_STATS_INVALID, K::Be32},
                       {"ignore", CTA_STATS_IGNORE, K::Be32},
                       {"delete", CTA_STATS_DELETE, K::Be32},
                       {"deleteList", CTA_STATS_DELETE_LIST, K::Be32},
                       {"insert", CTA_STATS_INSERT, K::Be32},
                       {"insertFailed", CTA_STATS_INSERT_FAILED, K::Be32},
                       {"drop", CTA_STATS_DROP, K::Be32},
                       {"earlyDrop", CTA_STATS_EARLY_DROP, K::Be32},
                       {"error", CTA_STATS_ERROR, K::Be32},
                       {"searchRestart", CTA_STATS_SEARCH_RESTART, K::Be32},
                       {"clashResolve", CTA_STATS_CLASH_RESOLVE, K::Be32},
                       {"chainTooLong", CTA_STATS_CHAIN_TOOLONG, K::Be32}}};

// IPCTNL_MSG_CT_GET_STATS: the namespace's entry count and the table limit.
const Table kStatsGlobal{
    "statsGlobal",
    {{"entries", CTA_STATS_GLOBAL_ENTRIES, K::Be32}, {"maxEntries", CTA_STATS_GLOBAL_MAX_ENTRIES, K::Be32}}};

constexpr uint16_t Msg(int m) { return static_cast<uint16_t>(NFNL_SUBSYS_CTNETLINK << 8 | m); }

}  // namespace

void RegisterConntrack(Registry& r) {
  const int p = NETLINK_NETFILTER;
  r.Add({p, Msg(IPCTNL_MSG_CT_NEW), "IPCTNL_MSG_CT_NEW", &kNfgenmsg, &kConntrack});
  r.Add({p, Msg(IPCTNL_MSG_CT_GET), "IPCTNL_MSG_CT_GET", &kNfgenmsg, &kConntrack});
  r.Add({p, Msg(IPCTNL_MSG_CT_DELETE), "IPCTNL_MSG_CT_DELETE", &kNfgenmsg, &kConntrack});
  r.Add({p, Msg(IPCTNL_MSG_CT_GET_CTRZERO), "IPCTNL_MSG_CT_GET_CTRZERO", &kNfgenmsg, &kConntrack});
  r.Add({p, Msg(IPCTNL_MSG_CT_GET_STATS_CPU), "IPCTNL_MSG_CT_GET_STATS_CPU", &kNfgenmsg, &kStatsCpu});
  r.Add({p, Msg(IPCTNL_MSG_CT_GET_STATS), "IPCTNL_MSG_CT_GET_STATS", &kNfgenmsg, &kStatsGlobal});
  r.Add({p, Msg(IPCTNL_MSG_CT_GET_DYING), "IPCTNL_MSG_CT_GET_DYING", &kNfgenmsg, &kConntrack});
  r.Add({p, Msg(IPCTNL_MSG_CT_GET_UNCONFIRMED), "IPCTNL_MSG_CT_GET_UNCONFIRMED", &kNfgenmsg, &kConntrack});
}

}  // namespace nl
