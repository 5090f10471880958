// Netlink message and attribute encoding: a bounds-checked builder and parser.
// Reference: include/uapi/linux/netlink.h (struct nlmsghdr, struct nlattr, NLA_ALIGN).
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace nl {

constexpr size_t Align(size_t n) { return (n + 3u) & ~size_t(3); }

// Builds one or more netlink messages into a contiguous buffer.
class Builder {
 public:
  // Starts a message; returns its offset in the buffer.
  size_t BeginMessage(uint16_t type, uint16_t flags, uint32_t seq) {
    Pad();
    size_t off = buf_.size();
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    h.nlmsg_seq = seq;
    Append(&h, sizeof h);
    msg_ = off;
    return off;
  }
  // Appends a fixed header (ifinfomsg, rtmsg, ...), padded to 4 bytes.
  void PutHeader(const void* data, size_t len) {
    Append(data, len);
    Pad();
  }
  void Attr(uint16_t type, const void* data, size_t len) {
    Pad();
    nlattr a{};
    a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
    a.nla_type = type;
    Append(&a, sizeof a);
    Append(data, len);
    Pad();
  }
  template <typename T>
  void AttrScalar(uint16_t type, T v) {
    Attr(type, &v, sizeof v);
  }
  void AttrString(uint16_t type, const std::string& s) { Attr(type, s.c_str(), s.size() + 1); }
  void AttrFlag(uint16_t type) { Attr(type, nullptr, 0); }
  size_t BeginNest(uint16_t type) {
    Pad();
    size_t off = buf_.size();
    nlattr a{};
    a.nla_type = static_cast<uint16_t>(type | NLA_F_NESTED);
    Append(&a, sizeof a);
    return off;
  }
  void EndNest(size_t off) {
    Pad();
    uint16_t len = static_cast<uint16_t>(buf_.size() - off);
    std::memcpy(buf_.data() + off, &len, sizeof len);
  }
  void EndMessage() {
    Pad();
    uint32_t len = static_cast<uint32_t>(buf_.size() - msg_);
    std::memcpy(buf_.data() + msg_, &len, sizeof len);
  }
  // True when a nest or message has grown past what its 16-bit length can hold.
  bool NestTooLong(size_t off) const { return buf_.size() - off > 0xffff; }
  size_t Size() const { return buf_.size(); }
  std::vector<uint8_t>& Bytes() { return buf_; }

 private:
  void Append(const void* p, size_t n) {
    if (n == 0) return;
    const uint8_t* b = static_cast<const uint8_t*>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  void Pad() { buf_.resize(Align(buf_.size()), 0); }
  std::vector<uint8_t> buf_;
  size_t msg_ = 0;
};

struct AttrView {
  uint16_t type;  // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
  bool nested;    // NLA_F_NESTED was set
  const uint8_t* data;
  size_t len;
};

// Walks the attributes in [p, p+len). Returns false if an attribute is malformed
// (length below the header or past the end); fn is not called for it.
template <typename F>
bool ForEachAttr(const uint8_t* p, size_t len, F&& fn) {
  size_t off = 0;
  while (off + NLA_HDRLEN <= len) {
    nlattr a;
    std::memcpy(&a, p + off, sizeof a);
    if (a.nla_len < NLA_HDRLEN || a.nla_len > len - off) return false;
    AttrView v{static_cast<uint16_t>(a.nla_type & NLA_TYPE_MASK), (a.nla_type & NLA_F_NESTED) != 0,
               p + off + NLA_HDRLEN, static_cast<size_t>(a.nla_len - NLA_HDRLEN)};
    fn(v);
    off += Align(a.nla_len);
  }
  // Trailing bytes shorter than a header are padding only if they are at most 3.
  return off >= len || len - off < 4;
}

struct MessageView {
  nlmsghdr hdr;
  const uint8_t* payload;  // after nlmsghdr
  size_t len;              // payload length
};

// Walks the netlink messages in one datagram. Returns false if a message is malformed.
template <typename F>
bool ForEachMessage(const uint8_t* p, size_t len, F&& fn) {
  size_t off = 0;
  while (off + NLMSG_HDRLEN <= len) {
    nlmsghdr h;
    std::memcpy(&h, p + off, sizeof h);
    if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > len - off) return false;
    MessageView m{h, p + off + NLMSG_HDRLEN, h.nlmsg_len - NLMSG_HDRLEN};
    if (!fn(m)) return true;
    off += Align(h.nlmsg_len);
  }
  return off >= len;
}

}  // namespace nl
