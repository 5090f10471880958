// A change counter for a directory, read synchronously: an inotify watch whose pending events
// are drained on demand. generation() moves past every change whose syscall returned before the
// call (the kernel queues an inotify event inside the write/rename/unlink that causes it), so a
// reader that took a generation, then read the directory's files, knows its copy is current
// while the generation stays the same. Nothing here knows what the files mean.
#pragma once

#include <napi.h>

#include <cstdint>

namespace nsnet {

// Tags every ChangeWatch object, so that a consumer can tell one from any other wrapped object.
extern const napi_type_tag kChangeWatchTag;

class ChangeWatch : public Napi::ObjectWrap<ChangeWatch> {
 public:
  static Napi::Function Init(Napi::Env env);
  // new ChangeWatch(dir): throws (with the errno's code) when the directory cannot be watched.
  explicit ChangeWatch(const Napi::CallbackInfo& info);
  ~ChangeWatch() override;

  // Drains the pending events; the generation after them, or -1 once the watch is gone (the
  // directory was removed or moved, or the watch was closed): then nothing can be trusted.
  int64_t Generation();

 private:
  Napi::Value GenerationJs(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  void CloseFd();

  int fd_ = -1;
  int64_t generation_ = 0;
};

}  // namespace nsnet
