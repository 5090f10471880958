// sock_diag (NETLINK_SOCK_DIAG): SOCK_DIAG_BY_FAMILY dumps of inet sockets, to find the
// host's listening sockets before publishing a port. Request struct inet_diag_req_v2, reply
// struct inet_diag_msg; of the INET_DIAG_* attributes INET_DIAG_SKV6ONLY is decoded (the kernel
// sends it for AF_INET6 sockets in LISTEN or CLOSE state: listening TCP, unconnected UDP), the
// others are kept raw.
// Reference: include/uapi/linux/sock_diag.h, linux/inet_diag.h.
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include <cstddef>

#include "../netlink/schema.h"
#include "diag.h"

namespace nl {
namespace {

// Addresses are four big-endian words each; ports big-endian.
const Struct kReq{
    "inet_diag_req_v2",
    sizeof(inet_diag_req_v2),
    {{"family", offsetof(inet_diag_req_v2, sdiag_family), 1, false},
     {"protocol", offsetof(inet_diag_req_v2, sdiag_protocol), 1, false},
     {"ext", offsetof(inet_diag_req_v2, idiag_ext), 1, false},
     {"states", offsetof(inet_diag_req_v2, idiag_states), 4, false},
     {"sport", offsetof(inet_diag_req_v2, id) + offsetof(inet_diag_sockid, idiag_sport), 2, false, true},
     {"dport", offsetof(inet_diag_req_v2, id) + offsetof(inet_diag_sockid, idiag_dport), 2, false, true}}};

constexpr uint16_t kId = offsetof(inet_diag_msg, id);
constexpr uint16_t kSrc = kId + offsetof(inet_diag_sockid, idiag_src);

const Struct kMsg{"inet_diag_msg",
                  sizeof(inet_diag_msg),
                  {{"family", offsetof(inet_diag_msg, idiag_family), 1, false},
                   {"state", offsetof(inet_diag_msg, idiag_state), 1, false},
                   {"sport", kId + offsetof(inet_diag_sockid, idiag_sport), 2, false, true},
                   {"dport", kId + offsetof(inet_diag_sockid, idiag_dport), 2, false, true},
                   {"src0", kSrc, 4, false, true},
                   {"src1", kSrc + 4, 4, false, true},
                   {"src2", kSrc + 8, 4, false, true},
                   {"src3", kSrc + 12, 4, false, true},
                   {"ifindex", kId + offsetof(inet_diag_sockid, idiag_if), 4, false},
                   {"uid", offsetof(inet_diag_msg, idiag_uid), 4, false},
                   {"inode", offsetof(inet_diag_msg, idiag_inode), 4, false}}};

// An IPv6 socket bound to :: accepts IPv4 too unless IPV6_V6ONLY is set (net/ipv4/inet_diag.c,
// inet_diag_msg_attrs_fill).
const Table kAttrs{"inetDiag", {{"v6only", INET_DIAG_SKV6ONLY, Kind::U8}}};

}  // namespace

void RegisterInetDiag(Registry& r) {
  MessageSpec m{NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, "SOCK_DIAG_BY_FAMILY", &kReq, &kAttrs};
  m.reply_header = &kMsg;
  r.Add(m);
}

}  // namespace nl
