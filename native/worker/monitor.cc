#include "monitor.h"

#include <cerrno>
#include <memory>

#include "../netlink/codec.h"
#include "../netlink/json.h"
#include "errors.h"

namespace nsnet {

Napi::Function Monitor::Init(Napi::Env env) {
  return DefineClass(env, "Monitor", {InstanceMethod<&Monitor::Close>("close")});
}

Monitor::Monitor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Monitor>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsArray() || !info[3].IsFunction()) {
    InvalidArgument(env, "new Monitor(protocol, netnsFd, groups, callback)").ThrowAsJavaScriptException();
    return;
  }
  protocol_ = info[0].As<Napi::Number>().Int32Value();
  int fd = info[1].As<Napi::Number>().Int32Value();
  Napi::Array groups = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < groups.Length(); i++) groups_.push_back(groups.Get(i).As<Napi::Number>().Uint32Value());
  nl::SysError err = worker_.Start(env, "nsnet.monitor", this, fd, info[3].As<Napi::Function>(), [this] { Run(); });
  if (!err.ok()) {
    err.message = "cannot set up the monitor: " + err.message;
    MakeError(env, err).ThrowAsJavaScriptException();
    return;
  }
  Ref();  // alive while open: the callback must be reachable
}

Monitor::~Monitor() { worker_.Stop(); }

// The monitor's thread: joins the groups, says so, then decodes datagrams until closed.
void Monitor::Run() {
  nl::Socket sock;
  nl::SysError err = sock.Open(protocol_, worker_.netns_fd(), groups_);
  if (!err.ok()) {
    auto ev = std::make_unique<MonitorEvent>();
    ev->error = err;
    ev->protocol = protocol_;
    worker_.Post(std::move(ev));
    return;
  }
  {
    // Subscribed: the JS side may now list the current state without missing an event.
    auto ready = std::make_unique<MonitorEvent>();
    ready->ready = true;
    if (!worker_.Post(std::move(ready))) return;
  }
  for (;;) {
    auto ev = std::make_unique<MonitorEvent>();
    ev->protocol = protocol_;
    if (!sock.ReceiveOne(ev->data, worker_.cancel_fd(), ev->error)) {
      if (ev->error.code == "ERR_HANDLE_CLOSED") return;
      // ENOBUFS: events were lost; report it and keep reading.
      bool fatal = ev->error.code != "ENOBUFS";
      if (!worker_.Post(std::move(ev))) return;
      if (fatal) return;
      continue;
    }
    std::string decode_error;
    if (!nl::MessagesToJson(protocol_, ev->data.data(), ev->data.size(), ev->json, decode_error))
      ev->error = {EBADMSG, "ERR_MALFORMED_REPLY", "an event could not be decoded: " + decode_error};
    std::vector<uint8_t>().swap(ev->data);
    if (!worker_.Post(std::move(ev))) return;
  }
}

void Monitor::Deliver(Napi::Env env, Napi::Function cb, Monitor*, MonitorEvent* raw) {
  // Uses nothing of the Monitor: it may already be collected when a last event arrives.
  std::unique_ptr<MonitorEvent> ev(raw);
  if (env == nullptr || cb.IsEmpty()) return;
  if (ev->ready) {
    cb.Call({env.Null(), env.Null()});
    return;
  }
  if (!ev->error.ok()) {
    cb.Call({MakeError(env, ev->error).Value(), env.Null()});
    return;
  }
  cb.Call({env.Null(), nl::ParseJson(env, ev->json)});
}

Napi::Value Monitor::Close(const Napi::CallbackInfo& info) {
  if (worker_.running()) {
    worker_.Stop();
    Unref();
  }
  return info.Env().Undefined();
}

}  // namespace nsnet
