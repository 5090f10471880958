// One-shot netlink exchanges in another namespace, with no handle and no thread of their own.
#pragma once

#include <napi.h>

namespace nsnet {

// execIn(protocol, netnsFd, requests, atomic?) -> Promise<result[]>: what Handle.exec()
// answers, run by a pooled thread (pool.h) that enters the namespace, opens a socket there,
// runs the requests, closes the socket and goes back to its own namespace. For the short
// configuration of a container's side of an attachment (loopback, address, up, routes): no
// handle, no worker thread, no thread created once the pool is warm.
Napi::Value ExecIn(const Napi::CallbackInfo& info);

// threadsStarted() -> number: threads nsnet's pool has started since the process began (the
// benchmark's count of thread creations per operation).
Napi::Value ThreadsStarted(const Napi::CallbackInfo& info);

// syncfs(fd) -> Promise<void>: syncfs(2) of the file system holding `fd`, on a pooled thread
// (the state store's checkpoint: every document written since the last one, at once).
Napi::Value Syncfs(const Napi::CallbackInfo& info);

}  // namespace nsnet
