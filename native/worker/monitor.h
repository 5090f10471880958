// A netlink monitor: a socket joined to multicast groups (link, address, route events) in one
// namespace, read by its own thread; each datagram is decoded on the main thread and passed
// to a JS callback. It keeps the process alive until closed, like a listening server.
#pragma once

#include <napi.h>

#include <string>
#include <vector>

#include "../netlink/socket.h"
#include "worker_thread.h"

namespace nsnet {

struct MonitorEvent {
  std::vector<uint8_t> data;
  nl::SysError error;
  int protocol = 0;
  std::string json;    // decoded on the monitor thread
  bool ready = false;  // the socket has joined its groups
};

class Monitor : public Napi::ObjectWrap<Monitor> {
 public:
  static Napi::Function Init(Napi::Env env);
  // new Monitor(protocol, netnsFd, groups: number[], callback(err, messages)); the first call,
  // (null, null), says the subscription is live.
  explicit Monitor(const Napi::CallbackInfo& info);
  ~Monitor() override;

 private:
  Napi::Value Close(const Napi::CallbackInfo& info);
  static void Deliver(Napi::Env env, Napi::Function cb, Monitor* self, MonitorEvent* ev);
  void Run();

  int protocol_ = 0;
  std::vector<uint32_t> groups_;
  // Last: destroyed first (its destructor joins the thread, which uses the members above). Its
  // request queue stays empty: a monitor only reads.
  WorkerThread<Monitor, MonitorEvent, &Monitor::Deliver> worker_;
};

}  // namespace nsnet
