// Module init only: registers the classes and functions of the addon.
#include <linux/netlink.h>
#include <malloc.h>
#include <napi.h>
#include <time.h>

#include "netlink/codec.h"
#include "netlink/json.h"
#include "netlink/socket.h"
#include "netns/netns.h"
#include "udp/change_watch.h"
#include "udp/responder.h"
#include "worker/errors.h"
#include "worker/exec_in.h"
#include "worker/handle.h"
#include "worker/monitor.h"

namespace nsnet {
namespace {

// encode(protocol, request) -> Buffer: one message, exactly as exec() would send it (seq from
// request.seq, default 0). For tests and tools.
Napi::Value Encode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsObject()) {
    InvalidArgument(env, "encode(protocol, request)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object req = info[1].As<Napi::Object>();
  uint32_t seq = req.Get("seq").IsNumber() ? req.Get("seq").As<Napi::Number>().Uint32Value() : 0;
  nl::Builder b;
  std::string err;
  if (!nl::EncodeMessage(env, info[0].As<Napi::Number>().Int32Value(), req, seq, b, err)) {
    InvalidArgument(env, err).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Buffer<uint8_t>::Copy(env, b.Bytes().data(), b.Bytes().size());
}

// decode(protocol, buffer) -> message[]; throws ERR_MALFORMED_MESSAGE.
Napi::Value Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBuffer()) {
    InvalidArgument(env, "decode(protocol, buffer)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto buf = info[1].As<Napi::Buffer<uint8_t>>();
  std::string json, err;
  if (!nl::MessagesToJson(info[0].As<Napi::Number>().Int32Value(), buf.Data(), buf.Length(), json, err)) {
    Napi::Error e = Napi::Error::New(env, err);
    e.Set("code", Napi::String::New(env, "ERR_MALFORMED_MESSAGE"));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return nl::ParseJson(env, json);
}

// parseError(buffer) -> { errno, code, extack?, extackOffset? } for an NLMSG_ERROR message.
Napi::Value ParseError(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) {
    InvalidArgument(env, "parseError(buffer)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  nl::MsgResult r;
  if (!nl::ParseErrorMessage(buf.Data(), buf.Length(), r)) {
    Napi::Error e = Napi::Error::New(env, "not a well-formed NLMSG_ERROR message");
    e.Set("code", Napi::String::New(env, "ERR_MALFORMED_MESSAGE"));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("errno", Napi::Number::New(env, r.err));
  o.Set("code", Napi::String::New(env, r.err ? nl::ErrnoCode(r.err) : "OK"));
  if (!r.extack.empty()) o.Set("extack", Napi::String::New(env, r.extack));
  if (r.extack_offset >= 0) o.Set("extackOffset", Napi::Number::New(env, static_cast<double>(r.extack_offset)));
  return o;
}

Napi::Value ErrnoCode(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), nl::ErrnoCode(info[0].As<Napi::Number>().Int32Value()));
}

// trimMemory() -> boolean: gives the C heap's free pages back to the kernel (glibc's
// malloc_trim(0) releases free pages inside every arena, not only the top of the main one).
// The daemon calls it after its idle garbage collection; false where the C library has none.
Napi::Value TrimMemory(const Napi::CallbackInfo& info) {
#ifdef __GLIBC__
  malloc_trim(0);
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// threadCpuMs() -> number: the CPU time the calling thread (the event loop's) has used, in
// milliseconds (CLOCK_THREAD_CPUTIME_ID: exact, unlike /proc's schedstat, which a running
// thread's reads see up to a scheduler tick late). The benchmark tells the event loop's own work
// from the waiting with it; Node 20 has no process.threadCpuUsage().
Napi::Value ThreadCpuMs(const Napi::CallbackInfo& info) {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return Napi::Number::New(info.Env(), static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Handle", Handle::Init(env));
  exports.Set("Monitor", Monitor::Init(env));
  exports.Set("ChangeWatch", ChangeWatch::Init(env));
  exports.Set("UdpResponder", UdpResponder::Init(env));
  exports.Set("encode", Napi::Function::New<Encode>(env, "encode"));
  exports.Set("decode", Napi::Function::New<Decode>(env, "decode"));
  exports.Set("parseError", Napi::Function::New<ParseError>(env, "parseError"));
  exports.Set("errnoCode", Napi::Function::New<ErrnoCode>(env, "errnoCode"));
  exports.Set("nsType", Napi::Function::New<NsType>(env, "nsType"));
  exports.Set("netnsCreate", Napi::Function::New<NetnsCreate>(env, "netnsCreate"));
  exports.Set("netnsRemove", Napi::Function::New<NetnsRemove>(env, "netnsRemove"));
  exports.Set("sysctl", Napi::Function::New<Sysctl>(env, "sysctl"));
  exports.Set("lockFile", Napi::Function::New<LockFile>(env, "lockFile"));
  exports.Set("tryLockFile", Napi::Function::New<TryLockFile>(env, "tryLockFile"));
  exports.Set("execIn", Napi::Function::New<ExecIn>(env, "execIn"));
  exports.Set("syncfs", Napi::Function::New<Syncfs>(env, "syncfs"));
  exports.Set("threadsStarted", Napi::Function::New<ThreadsStarted>(env, "threadsStarted"));
  exports.Set("inetSocket", Napi::Function::New<InetSocket>(env, "inetSocket"));
  exports.Set("trimMemory", Napi::Function::New<TrimMemory>(env, "trimMemory"));
  exports.Set("threadCpuMs", Napi::Function::New<ThreadCpuMs>(env, "threadCpuMs"));
  return exports;
}

}  // namespace
}  // namespace nsnet

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return nsnet::Init(env, exports); }
NODE_API_MODULE(nsnet_addon, InitModule)
