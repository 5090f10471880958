#include "change_watch.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "../netlink/codec.h"
#include "../worker/errors.h"

namespace nsnet {

namespace {
// What a commit, a checkpoint or a removal of the directory does (writes, truncations, renames,
// new and removed files); not what readers do, so that they do not move it themselves: not
// IN_ACCESS or IN_OPEN, and not IN_CLOSE_WRITE either (a reader closes the lock file it opened
// read-write to take a shared flock; a writer's write has already raised IN_MODIFY).
constexpr uint32_t kMask = IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                           IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
}  // namespace

const napi_type_tag kChangeWatchTag = {0x6e736e6574636877ULL, 0x2e67656e65726174ULL};

Napi::Function ChangeWatch::Init(Napi::Env env) {
  return DefineClass(
      env, "ChangeWatch",
      {InstanceMethod<&ChangeWatch::GenerationJs>("generation"), InstanceMethod<&ChangeWatch::Close>("close")});
}

ChangeWatch::ChangeWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ChangeWatch>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    InvalidArgument(env, "new ChangeWatch(dir)").ThrowAsJavaScriptException();
    return;
  }
  info.This().As<Napi::Object>().TypeTag(&kChangeWatchTag);
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0 || inotify_add_watch(fd_, dir.c_str(), kMask) < 0) {
    int e = errno;
    CloseFd();
    nl::SysError err{e, nl::ErrnoCode(e), std::string("cannot watch ") + dir + ": " + strerror(e)};
    MakeError(env, err).ThrowAsJavaScriptException();
  }
}

ChangeWatch::~ChangeWatch() { CloseFd(); }

void ChangeWatch::CloseFd() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

int64_t ChangeWatch::Generation() {
  if (fd_ < 0) return -1;
  alignas(struct inotify_event) char buf[4096];
  for (;;) {
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EAGAIN: drained
    generation_++;
    for (ssize_t off = 0; off < n;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(buf + off);
      // The directory itself went away (IN_IGNORED follows): a new one at its path is not watched.
      if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
        CloseFd();
        return -1;
      }
      off += static_cast<ssize_t>(sizeof(struct inotify_event) + ev->len);
    }
  }
  return generation_;
}

Napi::Value ChangeWatch::GenerationJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Generation()));
}

Napi::Value ChangeWatch::Close(const Napi::CallbackInfo& info) {
  CloseFd();
  return info.Env().Undefined();
}

}  // namespace nsnet
