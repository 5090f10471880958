// A netlink handle: one socket bound to a network namespace and one worker thread that owns
// it. JS calls enqueue requests; the worker runs them in order (requests on one socket are
// serialized) and hands results back through a thread-safe function, so the event loop never
// waits on the kernel. Parallelism comes from opening several handles.
#pragma once

#include <napi.h>

#include <memory>
#include <unordered_map>

#include "../netlink/socket.h"
#include "worker_thread.h"

namespace nsnet {

class Handle : public Napi::ObjectWrap<Handle> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Handle(const Napi::CallbackInfo& info);
  ~Handle() override;

 private:
  // JS: exec(requests: object[], atomic?: boolean, onPiece?: (index, replies | null) => void)
  //   -> Promise<result[]>. With onPiece, a long dump's replies come to it in pieces while the
  //   dump goes on (null: the dump restarted, drop that message's pieces), and its result
  //   holds only the replies after the last piece.
  Napi::Value Exec(const Napi::CallbackInfo& info);
  // JS: close(): rejects queued and in-flight requests with ERR_HANDLE_CLOSED.
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Pending(const Napi::CallbackInfo& info);
  Napi::Value Closed(const Napi::CallbackInfo& info);

  static void Deliver(Napi::Env env, Napi::Function, Handle* self, nl::Request* req);
  void Complete(Napi::Env env, std::unique_ptr<nl::Request> req);
  void TakePiece(Napi::Env env, const nl::Request& piece);
  void Run();
  void HandOn(nl::Request& req, size_t index, bool restart);
  void Shutdown();

  int protocol_ = 0;
  bool closed_ = false;  // main thread only
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Napi::Promise::Deferred> deferreds_;  // main thread only
  // exec()'s onPiece callbacks, by request id (main thread only).
  std::unordered_map<uint64_t, Napi::FunctionReference> on_piece_;
  // Last: destroyed first (its destructor joins the thread, which uses the members above).
  WorkerThread<Handle, nl::Request, &Handle::Deliver> worker_;
};

}  // namespace nsnet
