#include "socket.h"

#include <linux/netlink.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include "../worker/pool.h"
#include "attr.h"
#include "codec.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

namespace nl {
namespace {

constexpr int kBufferSize = 4 << 20;  // socket buffers: big batches and dumps
constexpr size_t kWindow = 64;        // messages in flight at once (bounded ACK backlog)
constexpr int kDumpRetries = 8;       // NLM_F_DUMP_INTR: re-run a dump at most this often
// The receive buffer is never smaller than this. The kernel sizes each datagram of a dump to
// the largest buffer this socket has passed to recvmsg (nlk->max_recvmsg_len, capped at
// 32 KiB; af_netlink.c netlink_dump), so a buffer sized to the datagram just peeked would keep
// every later datagram at the first one's size (~4 KiB: two or three links) — eight times the
// datagrams, syscalls and wake-ups of a 32 KiB one. iproute2 reads into 32 KiB for the same reason.
constexpr size_t kMinReceive = 32768;

SysError Errno(int err, const char* what) {
  SysError e;
  e.err = err;
  e.code = ErrnoCode(err);
  e.message = std::string(what) + ": " + std::strerror(err);
  return e;
}

// Parses the extended-ACK TLVs that follow struct nlmsgerr (with NETLINK_CAP_ACK only the
// header of the original request is echoed, so they start right after it).
void ParseExtAck(const nlmsghdr& h, const uint8_t* payload, size_t len, size_t tlv_offset, MsgResult& r) {
  if (!(h.nlmsg_flags & NLM_F_ACK_TLVS) || tlv_offset >= len) return;
  ForEachAttr(payload + tlv_offset, len - tlv_offset, [&](const AttrView& a) {
    if (a.type == NLMSGERR_ATTR_MSG)
      r.extack.assign(reinterpret_cast<const char*>(a.data), strnlen(reinterpret_cast<const char*>(a.data), a.len));
    else if (a.type == NLMSGERR_ATTR_OFFS && a.len == 4) {
      uint32_t off;
      std::memcpy(&off, a.data, 4);
      r.extack_offset = off;
    }
  });
}

}  // namespace

bool ParseErrorMessage(const uint8_t* data, size_t len, MsgResult& r) {
  bool ok = false;
  bool well_formed = ForEachMessage(data, len, [&](const MessageView& mv) {
    if (mv.hdr.nlmsg_type != NLMSG_ERROR || mv.len < sizeof(nlmsgerr)) return false;
    int32_t e;
    std::memcpy(&e, mv.payload, 4);
    r.err = e < 0 ? -e : e;
    // Without NETLINK_CAP_ACK the whole request is echoed before the TLVs.
    nlmsghdr echoed;
    std::memcpy(&echoed, mv.payload + 4, sizeof echoed);
    size_t tlv = (mv.hdr.nlmsg_flags & NLM_F_CAPPED) || r.err == 0 ? sizeof(nlmsgerr) : 4 + Align(echoed.nlmsg_len);
    ParseExtAck(mv.hdr, mv.payload, mv.len, tlv, r);
    ok = true;
    return false;
  });
  return ok && well_formed;
}

Socket::~Socket() { Close(); }

void Socket::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

SysError Socket::Open(int protocol, int netns_fd, const std::vector<uint32_t>& groups) {
  SysError result;
  int fd = -1;
  // The namespace switch happens on a thread of nsnet's pool, which goes back to its own
  // namespace right after; a socket keeps the namespace it was created in for its whole life.
  nsnet::pool::RunAndWait([&] {
    if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0) {
      result = Errno(errno, "setns");
      return;
    }
    fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd < 0) result = Errno(errno, "socket");
  });
  if (!result.ok()) return result;
  return Setup(fd, protocol, groups);
}

SysError Socket::OpenHere(int protocol, const std::vector<uint32_t>& groups) {
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  if (fd < 0) return Errno(errno, "socket");
  return Setup(fd, protocol, groups);
}

SysError Socket::Setup(int fd, int protocol, const std::vector<uint32_t>& groups) {
  SysError result;
  fd_ = fd;
  protocol_ = protocol;
  int one = 1;
  // Best effort: older kernels lack some of these; the request loop copes without them.
  setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(fd_, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  setsockopt(fd_, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one);
  int size = kBufferSize;
  if (setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  socklen_t sl = sizeof sndbuf_;
  getsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sndbuf_, &sl);
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    SysError e = Errno(errno, "bind");
    Close();
    return e;
  }
  socklen_t al = sizeof addr;
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &al) != 0) {
    SysError e = Errno(errno, "getsockname");
    Close();
    return e;
  }
  portid_ = addr.nl_pid;
  for (uint32_t g : groups) {
    if (setsockopt(fd_, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g) != 0) {
      SysError e = Errno(errno, "NETLINK_ADD_MEMBERSHIP");
      Close();
      return e;
    }
  }
  return result;
}

bool Socket::SendAll(const uint8_t* p, size_t len, SysError& err) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  for (;;) {
    ssize_t n = sendto(fd_, p, len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
    if (n == static_cast<ssize_t>(len)) return true;
    if (n < 0 && errno == EINTR) continue;
    err = Errno(n < 0 ? errno : EIO, "sendto");
    return false;
  }
}

int Socket::Receive(std::vector<uint8_t>& buf, size_t* out, int cancel_fd, SysError& err) {
  for (;;) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
    int nfds = cancel_fd >= 0 ? 2 : 1;
    int pr = poll(fds, nfds, -1);
    if (pr < 0) {
      if (errno == EINTR) continue;
      err = Errno(errno, "poll");
      return -1;
    }
    if (nfds == 2 && (fds[1].revents & POLLIN)) return 1;
    if (!(fds[0].revents & (POLLIN | POLLERR))) continue;
    // Size the buffer to the datagram: peek its length first.
    ssize_t n = recv(fd_, nullptr, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      err = Errno(errno, "recv");
      if (errno == ENOBUFS) err.message = "netlink receive buffer overrun: messages were lost (ENOBUFS)";
      return -1;
    }
    if (buf.size() < std::max(static_cast<size_t>(n), kMinReceive))
      buf.resize(std::max(static_cast<size_t>(n), kMinReceive));
    n = recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      err = Errno(errno, "recv");
      return -1;
    }
    *out = static_cast<size_t>(n);
    datagram_++;
    return 0;
  }
}

bool Socket::ReceiveOne(std::vector<uint8_t>& out, int cancel_fd, SysError& err) {
  size_t n = 0;
  int r = Receive(rbuf_, &n, cancel_fd, err);
  if (r == 1) {
    err.code = "ERR_HANDLE_CLOSED";
    err.message = "the handle was closed";
    return false;
  }
  if (r < 0) return false;
  out.assign(rbuf_.begin(), rbuf_.begin() + n);
  return true;
}

void Socket::AppendReply(MsgResult& m, const uint8_t* raw, size_t len, size_t datagram_size) {
  if (m.replies.empty() || m.last_datagram != datagram_) {
    m.replies.emplace_back();
    m.replies.back().reserve(datagram_size);
    m.last_datagram = datagram_;
  }
  std::vector<uint8_t>& c = m.replies.back();
  c.insert(c.end(), raw, raw + len);
  c.resize(Align(c.size()), 0);
}

void Socket::RunWindow(Request& req, size_t first, size_t count, int cancel_fd) {
  // Assign fresh sequence numbers and send the window's messages with one sendmsg.
  size_t begin = req.msgs[first].offset;
  size_t end = req.msgs[first + count - 1].offset + req.msgs[first + count - 1].len;
  for (size_t i = first; i < first + count; i++) {
    MsgResult& m = req.msgs[i];
    m.seq = ++seq_;
    if (m.seq == 0) m.seq = ++seq_;
    std::memcpy(req.bytes.data() + m.offset + offsetof(nlmsghdr, nlmsg_seq), &m.seq, 4);
    m.done = false;
    m.replies.clear();
    m.last_datagram = 0;
  }
  if (!SendAll(req.bytes.data() + begin, end - begin, req.error)) return;
  size_t pending = count;
  uint32_t base = req.msgs[first].seq;
  bool interrupted = false;
  while (pending > 0) {
    size_t n = 0;
    int r = Receive(rbuf_, &n, cancel_fd, req.error);
    if (r == 1) {
      req.error.code = "ERR_HANDLE_CLOSED";
      req.error.message = "the handle was closed while the request was in flight; it may or may not have taken effect";
      return;
    }
    if (r < 0) return;
    bool ok = ForEachMessage(rbuf_.data(), n, [&](const MessageView& mv) {
      if (mv.hdr.nlmsg_pid != portid_ && mv.hdr.nlmsg_pid != 0) return true;  // not for us
      uint32_t idx = mv.hdr.nlmsg_seq - base;
      if (mv.hdr.nlmsg_seq < base || idx >= count) return true;  // stale reply of an earlier request
      MsgResult& m = req.msgs[first + idx];
      if (m.done) return true;
      if (mv.hdr.nlmsg_type == NLMSG_ERROR) {
        if (mv.len < sizeof(nlmsgerr)) return true;
        int32_t e;
        std::memcpy(&e, mv.payload, 4);
        m.err = e < 0 ? -e : e;
        ParseExtAck(mv.hdr, mv.payload, mv.len, sizeof(nlmsgerr), m);
        m.done = true;
        pending--;
      } else if (mv.hdr.nlmsg_type == NLMSG_DONE && m.dump) {
        if (mv.len >= 4) {
          int32_t e;
          std::memcpy(&e, mv.payload, 4);
          m.err = e < 0 ? -e : e;
          ParseExtAck(mv.hdr, mv.payload, mv.len, 4, m);
        }
        if (mv.hdr.nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
        m.done = true;
        pending--;
      } else {
        if (mv.hdr.nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
        AppendReply(m, mv.payload - NLMSG_HDRLEN, mv.hdr.nlmsg_len, n);
      }
      return true;
    });
    if (!ok) {
      req.error.code = "ERR_MALFORMED_REPLY";
      req.error.message = "the kernel's reply could not be parsed";
      return;
    }
    if (count == 1 && req.msgs[first].dump && !req.msgs[first].done && req.on_dump_progress)
      req.on_dump_progress(first, false);
  }
  if (interrupted) req.msgs[first].err = EINTR;  // tells Transact to re-run the dump
}

// An nf_tables transaction: BATCH_BEGIN ... BATCH_END in one sendmsg, which the kernel
// processes as one unit before sendmsg returns, queueing every reply (errors, and ACKs for
// messages that asked for one) on our socket; so the replies are read without blocking.
void Socket::RunBatch(Request& req) {
  size_t need = req.bytes.size() + 4096;
  if (need > static_cast<size_t>(sndbuf_)) {
    int size = static_cast<int>(std::min<size_t>(need * 2, 1u << 30));
    if (setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
      setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    socklen_t sl = sizeof sndbuf_;
    getsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sndbuf_, &sl);
    if (need > static_cast<size_t>(sndbuf_)) {
      req.error = {EMSGSIZE, "EMSGSIZE", "the batch is larger than the socket send buffer can be made"};
      return;
    }
  }
  uint32_t base = seq_ + 1;
  for (MsgResult& m : req.msgs) {
    m.seq = ++seq_;
    std::memcpy(req.bytes.data() + m.offset + offsetof(nlmsghdr, nlmsg_seq), &m.seq, 4);
  }
  if (seq_ < base) {  // wrapped: numbering must be contiguous to map replies back
    seq_ = 0;
    RunBatch(req);
    return;
  }
  if (!SendAll(req.bytes.data(), req.bytes.size(), req.error)) return;
  for (;;) {
    ssize_t n = recv(fd_, nullptr, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // everything the kernel said is read
      req.error = Errno(errno, "recv");
      return;
    }
    if (rbuf_.size() < std::max(static_cast<size_t>(n), kMinReceive))
      rbuf_.resize(std::max(static_cast<size_t>(n), kMinReceive));
    n = recv(fd_, rbuf_.data(), rbuf_.size(), MSG_DONTWAIT);
    if (n < 0) continue;
    datagram_++;
    bool ok = ForEachMessage(rbuf_.data(), static_cast<size_t>(n), [&](const MessageView& mv) {
      if (mv.hdr.nlmsg_pid != portid_ && mv.hdr.nlmsg_pid != 0) return true;
      uint32_t idx = mv.hdr.nlmsg_seq - base;
      if (mv.hdr.nlmsg_seq < base || idx >= req.msgs.size()) return true;
      MsgResult& m = req.msgs[idx];
      if (mv.hdr.nlmsg_type == NLMSG_ERROR && mv.len >= sizeof(nlmsgerr)) {
        int32_t e;
        std::memcpy(&e, mv.payload, 4);
        m.err = e < 0 ? -e : e;
        ParseExtAck(mv.hdr, mv.payload, mv.len, sizeof(nlmsgerr), m);
        m.done = true;
      } else {
        AppendReply(m, mv.payload - NLMSG_HDRLEN, mv.hdr.nlmsg_len, n);
      }
      return true;
    });
    if (!ok) {
      req.error = {EBADMSG, "ERR_MALFORMED_REPLY", "the kernel's reply could not be parsed"};
      return;
    }
  }
}

void Socket::Transact(Request& req, int cancel_fd) {
  if (fd_ < 0) {
    req.error.code = "ERR_HANDLE_CLOSED";
    req.error.message = "the handle is closed";
    return;
  }
  if (req.atomic) {
    RunBatch(req);
    return;
  }
  size_t i = 0;
  while (i < req.msgs.size() && req.error.ok()) {
    if (req.msgs[i].dump) {
      // A socket runs one dump at a time; re-run it if the kernel says it was interrupted by
      // a concurrent change (NLM_F_DUMP_INTR), a bounded number of times.
      int attempt = 0;
      for (;;) {
        RunWindow(req, i, 1, cancel_fd);
        if (!req.error.ok() || req.msgs[i].err != EINTR) break;
        if (++attempt >= kDumpRetries) {
          req.error.code = "ERR_DUMP_INTERRUPTED";
          req.error.message =
              "the dump was interrupted by concurrent changes " + std::to_string(kDumpRetries) + " times";
          return;
        }
        req.msgs[i].err = 0;
        if (req.on_dump_progress) req.on_dump_progress(i, true);
      }
      i++;
      continue;
    }
    size_t count = 0, bytes = 0;
    while (i + count < req.msgs.size() && count < kWindow && !req.msgs[i + count].dump &&
           bytes + req.msgs[i + count].len < static_cast<size_t>(sndbuf_) / 2) {
      bytes += req.msgs[i + count].len;
      count++;
    }
    if (count == 0) count = 1;
    RunWindow(req, i, count, cancel_fd);
    i += count;
  }
}

}  // namespace nl
