// XFRM (NETLINK_XFRM): just enough to list security associations, which is how `doctor()`
// proves that the kernel's XFRM netlink interface answers in a namespace.
// XFRM_MSG_GETSA as a dump carries no fixed header: the kernel parses only attributes from
// it (hdrlen 0 in xfrm_dump_sa, net/xfrm/xfrm_user.c), e.g. XFRMA_PROTO to filter. Each SA comes
// back as XFRM_MSG_NEWSA: a struct xfrm_usersa_info followed by XFRMA_* attributes, which are
// kept raw (no table rows: the codec keeps unknown attributes as bytes).
// Reference: include/uapi/linux/xfrm.h.
#include "xfrm.h"

#include <linux/netlink.h>
#include <linux/xfrm.h>

#include <cstddef>

namespace nl {
namespace {

const Struct kNone{"none", 0, {}};

constexpr uint16_t kIdOff = offsetof(xfrm_usersa_info, id);

const Struct kUsersaInfo{"xfrm_usersa_info",
                         sizeof(xfrm_usersa_info),
                         {{"spi", kIdOff + offsetof(xfrm_id, spi), 4, false, true},
                          {"proto", kIdOff + offsetof(xfrm_id, proto), 1, false},
                          {"reqid", offsetof(xfrm_usersa_info, reqid), 4, false},
                          {"family", offsetof(xfrm_usersa_info, family), 2, false},
                          {"mode", offsetof(xfrm_usersa_info, mode), 1, false},
                          {"replayWindow", offsetof(xfrm_usersa_info, replay_window), 1, false},
                          {"flags", offsetof(xfrm_usersa_info, flags), 1, false}}};

// The dump request's only attribute of interest: XFRMA_PROTO (u8, IPPROTO_ESP/AH/COMP).
const Table kGetSa{"xfrmGetSa", {{"proto", XFRMA_PROTO, Kind::U8}}};
const Table kSa{"xfrmSa", {}};

}  // namespace

void RegisterXfrm(Registry& r) {
  // (Replies, to a dump or to a GETSA by id, are XFRM_MSG_NEWSA messages.)
  r.Add({NETLINK_XFRM, XFRM_MSG_GETSA, "XFRM_MSG_GETSA", &kNone, &kGetSa});
  r.Add({NETLINK_XFRM, XFRM_MSG_NEWSA, "XFRM_MSG_NEWSA", &kUsersaInfo, &kSa});
}

}  // namespace nl
