#include "monitor.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "../netlink/codec.h"
#include "../netlink/json.h"
#include "errors.h"

namespace nsnet {

Napi::Function Monitor::Init(Napi::Env env) {
  return DefineClass(env, "Monitor", {InstanceMethod<&Monitor::Close>("close")});
}

Monitor::Monitor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Monitor>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsArray() || !info[3].IsFunction()) {
    InvalidArgument(env, "new Monitor(protocol, netnsFd, groups, callback)").ThrowAsJavaScriptException();
    return;
  }
  protocol_ = info[0].As<Napi::Number>().Int32Value();
  int fd = info[1].As<Napi::Number>().Int32Value();
  Napi::Array groups = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < groups.Length(); i++) groups_.push_back(groups.Get(i).As<Napi::Number>().Uint32Value());
  netns_fd_ = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
  cancel_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if ((fd >= 0 && netns_fd_ < 0) || cancel_fd_ < 0) {
    MakeError(env, {errno, nl::ErrnoCode(errno), "cannot set up the monitor"}).ThrowAsJavaScriptException();
    return;
  }
  tsfn_ = Tsfn::New(env, info[3].As<Napi::Function>(), "nsnet.monitor", 0, 1, this);
  Ref();  // alive while open: the callback must be reachable
  napi_add_env_cleanup_hook(env, CleanupHook, this);
  worker_ = std::thread([this] {
    nl::Socket sock;
    nl::SysError err = sock.Open(protocol_, netns_fd_, groups_);
    if (!err.ok()) {
      auto ev = new MonitorEvent();
      ev->error = err;
      ev->protocol = protocol_;
      tsfn_.BlockingCall(ev);
      return;
    }
    {
      // Subscribed: the JS side may now list the current state without missing an event.
      auto ready = new MonitorEvent();
      ready->ready = true;
      if (tsfn_.BlockingCall(ready) != napi_ok) { delete ready; return; }
    }
    for (;;) {
      auto ev = new MonitorEvent();
      ev->protocol = protocol_;
      if (!sock.ReceiveOne(ev->data, cancel_fd_, ev->error)) {
        if (ev->error.code == "ERR_HANDLE_CLOSED") { delete ev; return; }
        // ENOBUFS: events were lost; report it and keep reading.
        bool fatal = ev->error.code != "ENOBUFS";
        if (tsfn_.BlockingCall(ev) != napi_ok) { delete ev; return; }
        if (fatal) return;
        continue;
      }
      std::string err;
      if (!nl::MessagesToJson(protocol_, ev->data.data(), ev->data.size(), ev->json, err))
        ev->error = {EBADMSG, "ERR_MALFORMED_REPLY", "an event could not be decoded: " + err};
      std::vector<uint8_t>().swap(ev->data);
      if (tsfn_.BlockingCall(ev) != napi_ok) { delete ev; return; }
    }
  });
}

Monitor::~Monitor() { Shutdown(); }

void Monitor::CleanupHook(void* arg) { static_cast<Monitor*>(arg)->Shutdown(); }

void Monitor::Shutdown() {
  if (worker_.joinable()) {
    uint64_t one = 1;
    if (write(cancel_fd_, &one, sizeof one) < 0) { /* cannot be full */ }
    worker_.join();
    tsfn_.Release();
    napi_remove_env_cleanup_hook(env_, CleanupHook, this);
  }
  if (cancel_fd_ >= 0) close(cancel_fd_);
  if (netns_fd_ >= 0) close(netns_fd_);
  cancel_fd_ = netns_fd_ = -1;
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
  if (worker_.joinable()) {
    Shutdown();
    Unref();
  }
  return info.Env().Undefined();
}

}  // namespace nsnet
