// libFuzzer target: the nf_tables expression decoder. Every input becomes the data of one
// expression in a rule, so mutations are spent on expression attributes rather than on
// getting the message and list framing right (decode_fuzz.cc covers the framing).
//
// Input: the expression's kernel name ("payload", "cmp", "ct", ... or any other string), a
// NUL, then the bytes of NFTA_EXPR_DATA. Built into
//   nlmsghdr(NFT_MSG_NEWRULE) nfgenmsg(inet) NFTA_RULE_TABLE "t"
//   NFTA_RULE_EXPRESSIONS { NFTA_LIST_ELEM { NFTA_EXPR_NAME name, NFTA_EXPR_DATA data } }
// and decoded as NETLINK_NETFILTER, with the invariants of check.h. The expression name
// chooses the table (a Variant in nft/objects.cc); names without one keep the data raw.
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "check.h"

namespace {

void Put(std::vector<uint8_t>& b, const void* p, size_t n) {
  const uint8_t* q = static_cast<const uint8_t*>(p);
  b.insert(b.end(), q, q + n);
}
void Pad(std::vector<uint8_t>& b) { b.resize((b.size() + 3) & ~size_t(3), 0); }
size_t Begin(std::vector<uint8_t>& b, uint16_t type) {
  Pad(b);
  size_t off = b.size();
  nlattr a{0, type};
  Put(b, &a, sizeof a);
  return off;
}
void End(std::vector<uint8_t>& b, size_t off) {
  uint16_t len = static_cast<uint16_t>(b.size() - off);
  std::memcpy(b.data() + off, &len, 2);
  Pad(b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const void* nul = std::memchr(data, 0, size < 32 ? size : 32);
  if (!nul) return 0;
  size_t name_len = static_cast<const uint8_t*>(nul) - data;
  const uint8_t* expr = data + name_len + 1;
  size_t expr_len = size - name_len - 1;
  if (expr_len > 60000) return 0;  // nlattr lengths are 16 bits

  std::vector<uint8_t> b;
  nlmsghdr h{};
  h.nlmsg_type = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE;
  Put(b, &h, sizeof h);
  nfgenmsg g{1 /* NFPROTO_INET */, NFNETLINK_V0, 0};
  Put(b, &g, sizeof g);
  size_t t = Begin(b, NFTA_RULE_TABLE);
  Put(b, "t", 2);
  End(b, t);
  size_t list = Begin(b, NLA_F_NESTED | NFTA_RULE_EXPRESSIONS);
  size_t elem = Begin(b, NLA_F_NESTED | NFTA_LIST_ELEM);
  size_t name = Begin(b, NFTA_EXPR_NAME);
  Put(b, data, name_len + 1);
  End(b, name);
  size_t d = Begin(b, NLA_F_NESTED | NFTA_EXPR_DATA);
  Put(b, expr, expr_len);
  End(b, d);
  End(b, elem);
  End(b, list);
  uint32_t total = static_cast<uint32_t>(b.size());
  std::memcpy(b.data(), &total, 4);

  // An exact-size heap copy, so that ASan sees a read past the message's end.
  std::vector<uint8_t> msg(b);
  msg.shrink_to_fit();
  fuzz::CheckDecode(12 /* NETLINK_NETFILTER */, msg.data(), msg.size(), NFTA_RULE_EXPRESSIONS);
  return 0;
}
