// RTM_NEWROUTE / RTM_DELROUTE / RTM_GETROUTE: struct rtmsg + RTA_* attributes.
// Reference: include/uapi/linux/rtnetlink.h.
#include <linux/rtnetlink.h>

#include <cstddef>

#include "../netlink/schema.h"
#include "rtnl.h"

namespace nl {
namespace {

using K = Kind;

const Struct kRtmsg{"rtmsg",
                    sizeof(rtmsg),
                    {{"family", offsetof(rtmsg, rtm_family), 1, false},
                     {"dstLen", offsetof(rtmsg, rtm_dst_len), 1, false},
                     {"srcLen", offsetof(rtmsg, rtm_src_len), 1, false},
                     {"tos", offsetof(rtmsg, rtm_tos), 1, false},
                     {"table", offsetof(rtmsg, rtm_table), 1, false},
                     {"protocol", offsetof(rtmsg, rtm_protocol), 1, false},
                     {"scope", offsetof(rtmsg, rtm_scope), 1, false},
                     {"type", offsetof(rtmsg, rtm_type), 1, false},
                     {"flags", offsetof(rtmsg, rtm_flags), 4, false}}};

const Table kRoute{"route",
                   {{"dst", RTA_DST, K::Addr},
                    {"src", RTA_SRC, K::Addr},
                    {"iif", RTA_IIF, K::U32},
                    {"oif", RTA_OIF, K::U32},
                    {"gateway", RTA_GATEWAY, K::Addr},
                    {"priority", RTA_PRIORITY, K::U32},
                    {"prefsrc", RTA_PREFSRC, K::Addr},
                    {"metrics", RTA_METRICS, K::Binary},
                    {"multipath", RTA_MULTIPATH, K::Binary},
                    {"flow", RTA_FLOW, K::U32},
                    {"cacheinfo", RTA_CACHEINFO, K::Binary},
                    {"table", RTA_TABLE, K::U32},
                    {"mark", RTA_MARK, K::U32},
                    {"via", RTA_VIA, K::Binary},
                    {"pref", RTA_PREF, K::U8},
                    {"encapType", RTA_ENCAP_TYPE, K::U16},
                    {"encap", RTA_ENCAP, K::Binary},
                    {"expires", RTA_EXPIRES, K::U64},
                    {"uid", RTA_UID, K::U32},
                    {"ttlPropagate", RTA_TTL_PROPAGATE, K::U8},
                    {"ipProto", RTA_IP_PROTO, K::U8},
                    {"sport", RTA_SPORT, K::Be16},
                    {"dport", RTA_DPORT, K::Be16},
                    {"nhId", RTA_NH_ID, K::U32}}};

}  // namespace

void RegisterRoute(Registry& r) {
  r.Add({NETLINK_ROUTE, RTM_NEWROUTE, "RTM_NEWROUTE", &kRtmsg, &kRoute});
  r.Add({NETLINK_ROUTE, RTM_DELROUTE, "RTM_DELROUTE", &kRtmsg, &kRoute});
  r.Add({NETLINK_ROUTE, RTM_GETROUTE, "RTM_GETROUTE", &kRtmsg, &kRoute});
}

}  // namespace nl
