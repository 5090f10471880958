// A netlink socket bound to a network namespace, and the request loop that runs on a
// handle's worker thread: sequence numbers, sender check, ACK / DONE handling, extended ACK
// parsing, NLM_F_DUMP_INTR retries, message-sized receives and cancellation.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "decode.h"

namespace nl {

// Why a whole request failed (as opposed to one message being refused by the kernel).
struct SysError {
  int err = 0;       // errno, 0 if none
  std::string code;  // stable code: "ERR_HANDLE_CLOSED", "ENOBUFS", ...
  std::string message;
  bool ok() const { return code.empty(); }
};

// One message of a request and what came back for it.
struct MsgResult {
  uint16_t type = 0;
  bool dump = false;
  size_t offset = 0, len = 0;  // where the message sits in Request::bytes
  uint32_t seq = 0;
  bool done = false;
  int err = 0;                 // positive errno from the kernel, 0 = success
  std::string extack;          // NLMSGERR_ATTR_MSG
  int64_t extack_offset = -1;  // NLMSGERR_ATTR_OFFS: byte offset of the bad attribute
  // Reply messages (dump results, echoes): one buffer per datagram they came in, so a long
  // dump is never copied into one growing buffer.
  std::vector<std::vector<uint8_t>> replies;
  uint64_t last_datagram = 0;
  AttrFilter filter;  // reply attributes to leave out when decoding
};

struct Request {
  uint64_t id = 0;
  std::vector<uint8_t> bytes;   // all messages, concatenated
  std::vector<MsgResult> msgs;  // one per message, in order
  bool atomic = false;          // one sendmsg, replies read without waiting (nf_tables batches)
  SysError error;
  std::string json;  // the decoded results, built on the worker (see json.h)
  // Worker: called after a datagram added replies to dump message `index` while its dump goes
  // on, so a long dump can be handed on in pieces (it may move msgs[index].replies out); with
  // `restart` when the dump is run again (NLM_F_DUMP_INTR) and what was handed on is void.
  std::function<void(size_t index, bool restart)> on_dump_progress;
  // Whether a long dump's replies are handed on in pieces (native/worker/handle.cc). A piece is
  // a Request of its own: `json` holds replies of message `piece_of`, or `restart` says to drop
  // the pieces of that message.
  bool stream = false, piece = false, restart = false;
  size_t piece_of = 0;
};

// Parses an NLMSG_ERROR message (header included) into r.err / r.extack / r.extack_offset.
// Returns false when it is not a well-formed NLMSG_ERROR.
bool ParseErrorMessage(const uint8_t* data, size_t len, MsgResult& r);

class Socket {
 public:
  Socket() = default;
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Opens a socket of `protocol` inside the network namespace `netns_fd` on a thread of
  // nsnet's pool that setns()es, creates the socket and goes back to its own namespace; the
  // calling thread's namespace is never changed. `groups`: multicast groups to join (monitors).
  SysError Open(int protocol, int netns_fd, const std::vector<uint32_t>& groups);
  // Opens a socket in the calling thread's own namespace (a pooled thread that has entered
  // the target namespace itself: native/worker/exec_in.cc).
  SysError OpenHere(int protocol, const std::vector<uint32_t>& groups);

  // Sends the request's messages and collects replies until each message is acknowledged
  // (or its dump is done). Returns early with ERR_HANDLE_CLOSED when `cancel_fd` is readable.
  void Transact(Request& req, int cancel_fd);

  // Receives one datagram into `out` (monitors). Returns false with `err` set on failure or
  // when `cancel_fd` becomes readable (err.code = ERR_HANDLE_CLOSED).
  bool ReceiveOne(std::vector<uint8_t>& out, int cancel_fd, SysError& err);

  int fd() const { return fd_; }
  uint32_t portid() const { return portid_; }
  void Close();

 private:
  SysError Setup(int fd, int protocol, const std::vector<uint32_t>& groups);
  bool SendAll(const uint8_t* p, size_t len, SysError& err);
  // Receives the next datagram; 0 = ok, 1 = cancelled, -1 = error.
  int Receive(std::vector<uint8_t>& buf, size_t* n, int cancel_fd, SysError& err);
  void RunWindow(Request& req, size_t first, size_t count, int cancel_fd);
  void RunBatch(Request& req);
  void AppendReply(MsgResult& m, const uint8_t* raw, size_t len, size_t datagram_size);
  uint64_t datagram_ = 0;  // counts received datagrams

  int fd_ = -1;
  int protocol_ = 0;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
  int sndbuf_ = 0;
  std::vector<uint8_t> rbuf_;
};

}  // namespace nl
