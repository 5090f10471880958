// Runs a blocking job on a thread of nsnet's pool (pool.h: long-lived threads of its own, never
// the main thread, never a libuv pool thread, so a job may setns(); the thread goes back to its
// namespace afterwards) and settles a promise with its result on the main thread.
#pragma once

#include <napi.h>

#include <functional>
#include <string>

#include "../netlink/socket.h"

namespace nsnet {

struct ThreadResult {
  nl::SysError error;
  // What the promise resolves with: built on the main thread from the job's output.
  std::function<Napi::Value(Napi::Env)> make_value;
};

Napi::Promise RunOnThread(Napi::Env env, const char* name, std::function<ThreadResult()> job);

}  // namespace nsnet
