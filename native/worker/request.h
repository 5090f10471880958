// A request as the JS side gives it (an array of message objects) turned into the bytes and
// bookkeeping of an nl::Request, and its results turned into JSON text: shared by a Handle's
// exec() and the one-shot execIn() (exec_in.cc).
#pragma once

#include <napi.h>

#include <memory>

#include "../netlink/socket.h"

namespace nsnet {

// Whether the environment can no longer run JavaScript (a worker thread being terminated):
// then nothing is built or sent, and nothing is thrown (node-addon-api cannot make errors there).
bool Terminating(Napi::Env env);

// Encodes `requests` (main thread). On bad input throws a TypeError (ERR_INVALID_ARGUMENT)
// into `env` and returns nullptr.
std::unique_ptr<nl::Request> BuildRequest(Napi::Env env, int protocol, Napi::Array requests, bool atomic);

// Runs off the main thread: the whole result as JSON text in req.json, so the main thread only
// parses it. A reply that cannot be decoded sets req.error.
//   [{"operation":"RTM_NEWLINK","errno":95,"code":"EOPNOTSUPP","extack":"...","replies":[...]}]
void ResultsToJson(int protocol, nl::Request& req);

}  // namespace nsnet
