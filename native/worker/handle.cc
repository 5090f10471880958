#include "handle.h"

#include <linux/netlink.h>

#include <cerrno>
#include <cstring>

#include "../netlink/codec.h"
#include "../netlink/json.h"
#include "errors.h"
#include "request.h"

namespace nsnet {

namespace {
// A long dump's replies are handed on to the main thread in pieces of about this many bytes of
// messages (about 100 links).
constexpr size_t kPieceBytes = 128 * 1024;
}  // namespace

Napi::Function Handle::Init(Napi::Env env) {
  return DefineClass(env, "Handle",
                     {InstanceMethod<&Handle::Exec>("exec"), InstanceMethod<&Handle::Close>("close"),
                      InstanceAccessor<&Handle::Pending>("pending"), InstanceAccessor<&Handle::Closed>("closed")});
}

// new Handle(protocol: number, netnsFd: number). The fd is duplicated; the caller keeps its own.
Handle::Handle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Handle>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    InvalidArgument(env, "new Handle(protocol, netnsFd)").ThrowAsJavaScriptException();
    return;
  }
  protocol_ = info[0].As<Napi::Number>().Int32Value();
  int fd = info[1].As<Napi::Number>().Int32Value();
  nl::SysError err = worker_.Start(env, "nsnet.netlink", this, fd, Napi::Function(), [this] { Run(); });
  if (!err.ok()) {
    closed_ = true;
    MakeError(env, err).ThrowAsJavaScriptException();
    return;
  }
  worker_.Unref(env);  // an idle handle does not keep the process alive
}

Handle::~Handle() { Shutdown(); }

void Handle::Shutdown() {
  worker_.Stop();
  closed_ = true;
}

void Handle::Run() {
  nl::Socket sock;
  nl::SysError open_error = sock.Open(protocol_, worker_.netns_fd(), {});
  for (;;) {
    std::deque<std::unique_ptr<nl::Request>> unsent;
    std::unique_ptr<nl::Request> req = worker_.Next(unsent);
    if (!req) {
      // Closed: everything still queued is rejected; the in-flight request was interrupted by
      // the cancel eventfd inside Transact.
      for (std::unique_ptr<nl::Request>& q : unsent) {
        q->error.code = "ERR_HANDLE_CLOSED";
        q->error.message = "the handle was closed before the request was sent";
        if (!worker_.Post(std::move(q))) return;
      }
      return;
    }
    if (!open_error.ok()) {
      req->error = open_error;
    } else {
      nl::Request& r = *req;
      if (r.stream) r.on_dump_progress = [this, &r](size_t i, bool restart) { HandOn(r, i, restart); };
      sock.Transact(r, worker_.cancel_fd());
      r.on_dump_progress = nullptr;
    }
    if (req->error.ok()) ResultsToJson(protocol_, *req);
    if (!worker_.Post(std::move(req))) return;
  }
}

// Worker: hands on the replies of a long dump received so far, so that the main thread parses
// them while the rest is still coming. A dump of 2,000 links is ~3 MB of messages: parsed whole
// at the end, the event loop waited through the dump and then the worker through the parse.
void Handle::HandOn(nl::Request& req, size_t index, bool restart) {
  nl::MsgResult& m = req.msgs[index];
  auto piece = std::make_unique<nl::Request>();
  piece->id = req.id;
  piece->piece = true;
  piece->piece_of = index;
  if (restart) {
    piece->restart = true;
    worker_.Post(std::move(piece));
    return;
  }
  size_t bytes = 0;
  for (const std::vector<uint8_t>& c : m.replies) bytes += c.size();
  if (bytes < kPieceBytes) return;
  piece->json.reserve(bytes);
  std::string err;
  // Replies that cannot be decoded stay where they are: the whole result reports them.
  if (!nl::MessagesToJson(protocol_, m.replies, piece->json, err, &m.filter)) return;
  std::vector<std::vector<uint8_t>>().swap(m.replies);
  worker_.Post(std::move(piece));  // false: the environment is going away, and so is the result
}

void Handle::Deliver(Napi::Env env, Napi::Function, Handle* self, nl::Request* raw) {
  std::unique_ptr<nl::Request> req(raw);
  if (env == nullptr) return;  // environment shutting down
  self->Complete(env, std::move(req));
}

void Handle::Complete(Napi::Env env, std::unique_ptr<nl::Request> req) {
  auto it = deferreds_.find(req->id);
  if (it == deferreds_.end()) return;
  if (req->piece) {
    TakePiece(env, *req);
    return;
  }
  Napi::Promise::Deferred deferred = it->second;
  deferreds_.erase(it);
  if (deferreds_.empty()) {
    if (!closed_) worker_.Unref(env);
    Unref();  // every pending request has settled: the object may be collected again
  }
  on_piece_.erase(req->id);
  Napi::HandleScope scope(env);
  if (!req->error.ok()) {
    deferred.Reject(MakeError(env, req->error).Value());
    return;
  }
  deferred.Resolve(nl::ParseJson(env, req->json));
}

void Handle::TakePiece(Napi::Env env, const nl::Request& piece) {
  auto found = on_piece_.find(piece.id);
  if (found == on_piece_.end()) return;
  Napi::HandleScope scope(env);
  // Raw, checked Node-API calls, for the reason given in nl::ParseJson. The callback must not
  // throw (lib/netlink/conn.ts keeps what it throws for the request's result).
  napi_value args[2], fn = found->second.Value(), undefined, ignored;
  if (napi_create_uint32(env, static_cast<uint32_t>(piece.piece_of), &args[0]) != napi_ok ||
      napi_get_undefined(env, &undefined) != napi_ok)
    return;
  if (piece.restart) {
    if (napi_get_null(env, &args[1]) != napi_ok) return;
  } else {
    Napi::Value replies = nl::ParseJson(env, piece.json);
    if (replies.IsEmpty()) return;  // the environment is going away
    args[1] = replies;
  }
  napi_call_function(env, undefined, fn, 2, args, &ignored);
}

Napi::Value Handle::Exec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (Terminating(env)) return env.Undefined();
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  if (closed_) {
    deferred.Reject(MakeError(env, {0, "ERR_HANDLE_CLOSED", "the handle is closed"}).Value());
    return deferred.Promise();
  }
  bool stream = info.Length() > 2 && !info[2].IsUndefined();
  if (info.Length() < 1 || !info[0].IsArray() || (stream && !info[2].IsFunction())) {
    InvalidArgument(env, "exec(requests: object[], atomic?: boolean, onPiece?: function)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::unique_ptr<nl::Request> req =
      BuildRequest(env, protocol_, info[0].As<Napi::Array>(), info.Length() > 1 && info[1].ToBoolean().Value());
  if (!req) return env.Undefined();  // a TypeError is pending
  if (req->msgs.empty()) {
    deferred.Resolve(Napi::Array::New(env));
    return deferred.Promise();
  }
  req->id = next_id_++;
  if (deferreds_.empty()) {
    worker_.Ref(env);
    Ref();  // keep this object alive while requests are pending
  }
  deferreds_.emplace(req->id, deferred);
  if (stream) {
    req->stream = true;
    on_piece_.emplace(req->id, Napi::Persistent(info[2].As<Napi::Function>()));
  }
  worker_.Push(std::move(req));
  return deferred.Promise();
}

Napi::Value Handle::Close(const Napi::CallbackInfo& info) {
  // Joins the worker, which first posts a result (ERR_HANDLE_CLOSED) for every request it
  // still had; those settle their promises through the TSFN, and the last one drops the
  // strong reference that kept this object alive.
  if (!closed_) Shutdown();
  return info.Env().Undefined();
}

Napi::Value Handle::Pending(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(deferreds_.size()));
}

Napi::Value Handle::Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), closed_); }

}  // namespace nsnet
