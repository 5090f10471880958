// A netlink handle: one socket bound to a network namespace and one worker thread that owns
// it. JS calls enqueue requests; the worker runs them in order (requests on one socket are
// serialized) and hands results back through a thread-safe function, so the event loop never
// waits on the kernel. Parallelism comes from opening several handles.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "../netlink/socket.h"

namespace nsnet {

class Handle : public Napi::ObjectWrap<Handle> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Handle(const Napi::CallbackInfo& info);
  ~Handle() override;

 private:
  // JS: exec(requests: object[], atomic?: boolean) -> Promise<result[]>
  Napi::Value Exec(const Napi::CallbackInfo& info);
  // JS: close(): rejects queued and in-flight requests with ERR_HANDLE_CLOSED.
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Pending(const Napi::CallbackInfo& info);
  Napi::Value Closed(const Napi::CallbackInfo& info);

  static void Deliver(Napi::Env env, Napi::Function, Handle* self, nl::Request* req);
  void Complete(Napi::Env env, std::unique_ptr<nl::Request> req);
  void ResultsToJson(nl::Request& req) const;
  void Run();
  void Shutdown();
  static void CleanupHook(void* arg);

  using Tsfn = Napi::TypedThreadSafeFunction<Handle, nl::Request, &Handle::Deliver>;

  int protocol_ = 0;
  int netns_fd_ = -1;
  int cancel_fd_ = -1;
  Tsfn tsfn_;
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<nl::Request>> queue_;
  bool closing_ = false;  // guarded by mu_
  bool closed_ = false;   // main thread only
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Napi::Promise::Deferred> deferreds_;  // main thread only
  napi_env env_ = nullptr;
};

}  // namespace nsnet
