// libFuzzer target: the netlink message decoder (nl::MessagesToJson) of every protocol the
// registry knows, on arbitrary bytes. Built and run by scripts/fuzz.js (test/unit/fuzz.test.ts).
//
// Input: one selector byte, then the datagram.
//   selector % 5: the protocol — 0 NETLINK_ROUTE (links, addresses, routes, neighbours),
//                 1 NETLINK_NETFILTER (nf_tables objects and rule expressions, conntrack),
//                 2 NETLINK_SOCK_DIAG, 3 NETLINK_XFRM (raw until the registry has its
//                 schemas), 4 NETLINK_GENERIC (no schema: every message is kept raw).
//   selector / 5: picks the attribute type the filters of check.h use (1..52).
// Invariants: check.h.
//
// -DNSNET_FUZZ_SELFTEST plants an out-of-bounds read on inputs containing "nsnet-oob", to
// prove that the harness, ASan and libFuzzer's crash reporting really catch one.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "check.h"

namespace {
constexpr int kProtocols[5] = {0 /* NETLINK_ROUTE */, 12 /* NETLINK_NETFILTER */, 4 /* NETLINK_SOCK_DIAG */,
                               6 /* NETLINK_XFRM */, 16 /* NETLINK_GENERIC */};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
#ifdef NSNET_FUZZ_SELFTEST
  if (memmem(data, size, "nsnet-oob", 9) != nullptr) {
    // Reads one byte past libFuzzer's exact-size copy of the input: what a decoder that
    // trusted a length field would do.
    volatile uint8_t past = data[size];
    (void)past;
  }
#endif
  uint8_t sel = data[0];
  fuzz::CheckDecode(kProtocols[sel % 5], data + 1, size - 1, static_cast<uint16_t>(sel / 5 + 1));
  return 0;
}
