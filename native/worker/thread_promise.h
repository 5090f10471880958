// Runs a blocking job on a fresh std::thread (never the main thread, never a libuv pool thread,
// so it may setns()) and settles a promise with its result on the main thread.
#pragma once

#include <napi.h>

#include <functional>
#include <string>
#include <thread>

#include "../netlink/socket.h"

namespace nsnet {

struct ThreadResult {
  nl::SysError error;
  // What the promise resolves with: built on the main thread from the job's output.
  std::function<Napi::Value(Napi::Env)> make_value;
};

Napi::Promise RunOnThread(Napi::Env env, const char* name, std::function<ThreadResult()> job);

}  // namespace nsnet
