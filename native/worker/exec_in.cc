#include "exec_in.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "../netlink/codec.h"
#include "../netlink/json.h"
#include "errors.h"
#include "pool.h"
#include "request.h"
#include "thread_promise.h"

namespace nsnet {
namespace {

nl::SysError SysErr(int err, const char* what) {
  return {err, nl::ErrnoCode(err), std::string(what) + ": " + std::strerror(err)};
}

}  // namespace

Napi::Value ExecIn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (Terminating(env)) return env.Undefined();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsArray()) {
    InvalidArgument(env, "execIn(protocol, netnsFd, requests: object[], atomic?: boolean)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int protocol = info[0].As<Napi::Number>().Int32Value();
  std::shared_ptr<nl::Request> req =
      BuildRequest(env, protocol, info[2].As<Napi::Array>(), info.Length() > 3 && info[3].ToBoolean().Value());
  if (!req) return env.Undefined();  // a TypeError is pending
  if (req->msgs.empty()) {
    Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
    d.Resolve(Napi::Array::New(env));
    return d.Promise();
  }
  int nsfd = fcntl(info[1].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 3);
  if (nsfd < 0) {
    MakeError(env, SysErr(errno, "dup of the namespace fd failed")).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return RunOnThread(env, "nsnet.execIn", [protocol, nsfd, req]() -> ThreadResult {
    ThreadResult r;
    int rc = setns(nsfd, CLONE_NEWNET);
    int err = errno;
    close(nsfd);
    if (rc != 0) {
      r.error = SysErr(err, "setns");
      return r;
    }
    {
      nl::Socket sock;
      r.error = sock.OpenHere(protocol, {});
      if (!r.error.ok()) return r;
      sock.Transact(*req, -1);
    }  // closed here, before the thread leaves the namespace
    if (req->error.ok()) ResultsToJson(protocol, *req);
    if (!req->error.ok()) {
      r.error = req->error;
      return r;
    }
    r.make_value = [req](Napi::Env e) -> Napi::Value { return nl::ParseJson(e, req->json); };
    return r;
  });
}

Napi::Value ThreadsStarted(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(pool::ThreadsStarted()));
}

Napi::Value Syncfs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    InvalidArgument(env, "syncfs(fd)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = fcntl(info[0].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 3);
  if (fd < 0) {
    MakeError(env, SysErr(errno, "dup")).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return RunOnThread(env, "nsnet.syncfs", [fd]() -> ThreadResult {
    ThreadResult r;
    if (syncfs(fd) != 0) r.error = SysErr(errno, "syncfs");
    close(fd);
    return r;
  });
}

}  // namespace nsnet
