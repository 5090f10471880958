// A UDP socket served on the event loop's own thread (a uv_poll on its fd; no thread, no copy
// through JS for what it already knows): datagrams are read in batches (recvmmsg); one whose
// bytes after the first two, from that source address, are in the reply table is answered at
// once with the recorded reply, its first two bytes taken from the request (sendmmsg); every
// other datagram goes to the JS callback, which answers with send(). The table is only trusted
// while a ChangeWatch's generation is the one its entries were recorded under: the watch is
// drained after each batch is read and before any of it is answered, so a change whose syscall
// returned before a datagram was sent empties the table before that datagram is looked up.
// Nothing here knows what the datagrams mean (the DNS resolver fills the table: lib/dns).
#pragma once

#include <napi.h>
#include <uv.h>

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace nsnet {

class ChangeWatch;

class UdpResponder : public Napi::ObjectWrap<UdpResponder> {
 public:
  static Napi::Function Init(Napi::Env env);
  // new UdpResponder(fd, watch: ChangeWatch | null, onMiss(datagram, address, port)): takes the fd
  // (a bound UDP socket; closed by close()). Without a watch nothing is ever answered from the table.
  explicit UdpResponder(const Napi::CallbackInfo& info);
  ~UdpResponder() override;

  static constexpr size_t kMaxEntries = 8192;
  static constexpr size_t kMaxDatagram = 512;  // longer requests are never in the table
  static constexpr int kTags = 4;

 private:
  struct Entry {
    std::string reply;
    uint8_t tag;
  };
  struct Poll {
    uv_poll_t handle;
    UdpResponder* owner;
  };

  // remember(request, address, reply, tag, generation) -> boolean: false (nothing recorded) when
  // the generation is no longer the watch's.
  Napi::Value Remember(const Napi::CallbackInfo& info);
  Napi::Value Forget(const Napi::CallbackInfo& info);
  // send(datagram, address, port) -> boolean (false: the kernel refused it; nothing to do).
  Napi::Value Send(const Napi::CallbackInfo& info);
  // hits() -> number[kTags]: datagrams answered from the table, by the tag of their entry.
  Napi::Value Hits(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  static void OnReadable(uv_poll_t* handle, int status, int events);
  void Drain();
  // The table's generation now (draining the watch): -1 when it cannot be trusted.
  int64_t Current();
  void CloseAll();

  int fd_ = -1;
  Poll* poll_ = nullptr;
  ChangeWatch* watch_ = nullptr;
  Napi::ObjectReference watch_ref_;
  Napi::FunctionReference on_miss_;
  Napi::AsyncContext* context_ = nullptr;
  int64_t generation_ = -1;
  std::unordered_map<std::string, Entry> table_;
  std::array<double, kTags> hits_{};
  std::vector<uint8_t> buf_;  // kBatch datagrams of up to kSlot bytes, read at once
};

}  // namespace nsnet
