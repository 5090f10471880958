#include "handle.h"

#include <linux/netlink.h>

#include <cerrno>
#include <cstring>

#include "../netlink/codec.h"
#include "../netlink/json.h"
#include "errors.h"

namespace nsnet {

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
    if (!open_error.ok())
      req->error = open_error;
    else
      sock.Transact(*req, worker_.cancel_fd());
    if (req->error.ok()) ResultsToJson(*req);
    if (!worker_.Post(std::move(req))) return;
  }
}

void Handle::Deliver(Napi::Env env, Napi::Function, Handle* self, nl::Request* raw) {
  std::unique_ptr<nl::Request> req(raw);
  if (env == nullptr) return;  // environment shutting down
  self->Complete(env, std::move(req));
}

// Runs on the worker: the whole result as JSON text, so the main thread only parses it.
//   [{"operation":"RTM_NEWLINK","errno":95,"code":"EOPNOTSUPP","extack":"...","replies":[...]}]
void Handle::ResultsToJson(nl::Request& req) const {
  std::string& out = req.json;
  // The text is about as long as the messages it describes: one allocation, not a dozen
  // doublings with their page faults (a dump of 2,000 links is ~3 MB of messages).
  size_t raw = 0;
  for (const nl::MsgResult& m : req.msgs)
    for (const auto& c : m.replies) raw += c.size();
  out.reserve(raw + 128 * req.msgs.size() + 16);
  out.push_back('[');
  for (size_t i = 0; i < req.msgs.size(); i++) {
    nl::MsgResult& m = req.msgs[i];
    if (i) out.push_back(',');
    out += "{\"operation\":";
    nl::JsonString(out, nl::MessageName(protocol_, m.type));
    if (m.err) {
      out += ",\"errno\":" + std::to_string(m.err) + ",\"code\":";
      nl::JsonString(out, nl::ErrnoCode(m.err));
      if (!m.extack.empty()) {
        out += ",\"extack\":";
        nl::JsonString(out, m.extack);
      }
      if (m.extack_offset >= 0) out += ",\"extackOffset\":" + std::to_string(m.extack_offset);
    }
    out += ",\"replies\":";
    std::string err;
    if (!nl::MessagesToJson(protocol_, m.replies, out, err, &m.filter)) {
      req.error = {EBADMSG, "ERR_MALFORMED_REPLY", "the kernel's reply could not be decoded: " + err};
      out.clear();
      return;
    }
    std::vector<std::vector<uint8_t>>().swap(m.replies);
    out.push_back('}');
  }
  out.push_back(']');
}

void Handle::Complete(Napi::Env env, std::unique_ptr<nl::Request> req) {
  auto it = deferreds_.find(req->id);
  if (it == deferreds_.end()) return;
  Napi::Promise::Deferred deferred = it->second;
  deferreds_.erase(it);
  if (deferreds_.empty()) {
    if (!closed_) worker_.Unref(env);
    Unref();  // every pending request has settled: the object may be collected again
  }
  Napi::HandleScope scope(env);
  if (!req->error.ok()) {
    deferred.Reject(MakeError(env, req->error).Value());
    return;
  }
  deferred.Resolve(nl::ParseJson(env, req->json));
}

Napi::Value Handle::Exec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  if (closed_) {
    deferred.Reject(MakeError(env, {0, "ERR_HANDLE_CLOSED", "the handle is closed"}).Value());
    return deferred.Promise();
  }
  if (info.Length() < 1 || !info[0].IsArray()) {
    InvalidArgument(env, "exec(requests: object[], atomic?: boolean)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array arr = info[0].As<Napi::Array>();
  auto req = std::make_unique<nl::Request>();
  req->atomic = info.Length() > 1 && info[1].ToBoolean().Value();
  nl::Builder b;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsObject()) {
      InvalidArgument(env, "request " + std::to_string(i) + " is not an object").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::string err;
    size_t off = b.Size();
    if (!nl::EncodeMessage(env, protocol_, v.As<Napi::Object>(), 0, b, err)) {
      InvalidArgument(env, "request " + std::to_string(i) + ": " + err).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    nl::MsgResult m;
    // request.omit / request.only: names of reply attributes to leave out / to keep.
    Napi::Object ro = v.As<Napi::Object>();
    nlmsghdr hh;
    std::memcpy(&hh, b.Bytes().data() + off, sizeof hh);
    const nl::MessageSpec* spec = nl::Registry::Get().Find(protocol_, hh.nlmsg_type);
    for (auto [key, dest] :
         {std::pair<const char*, std::vector<uint16_t>*>{"omit", &m.filter.omit}, {"only", &m.filter.only}}) {
      Napi::Value list = ro.Get(key);
      if (!spec || !list.IsArray()) continue;
      Napi::Array names = list.As<Napi::Array>();
      for (uint32_t j = 0; j < names.Length(); j++) {
        std::string name = names.Get(j).ToString().Utf8Value();
        const nl::Attr* a = spec->attrs->ByName(name.data(), name.size());
        if (!a) {
          InvalidArgument(env, std::string(key) + ": no attribute '" + name + "'").ThrowAsJavaScriptException();
          return env.Undefined();
        }
        dest->push_back(a->type);
      }
    }
    nlmsghdr h;
    std::memcpy(&h, b.Bytes().data() + off, sizeof h);
    m.offset = off;
    m.len = h.nlmsg_len;
    m.type = h.nlmsg_type;
    m.dump = (h.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
    req->msgs.push_back(std::move(m));
  }
  if (req->msgs.empty()) {
    deferred.Resolve(Napi::Array::New(env));
    return deferred.Promise();
  }
  req->bytes = std::move(b.Bytes());
  req->id = next_id_++;
  if (deferreds_.empty()) {
    worker_.Ref(env);
    Ref();  // keep this object alive while requests are pending
  }
  deferreds_.emplace(req->id, deferred);
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
