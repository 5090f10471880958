// JS errors made from native failures: an Error with a stable `code`, `errno` and `syscall`.
#pragma once

#include <napi.h>

#include "../netlink/socket.h"

namespace nsnet {

inline Napi::Error MakeError(Napi::Env env, const nl::SysError& e) {
  Napi::Error err = Napi::Error::New(env, e.message.empty() ? e.code : e.message);
  err.Set("code", Napi::String::New(env, e.code));
  if (e.err) err.Set("errno", Napi::Number::New(env, e.err));
  return err;
}

inline Napi::Error InvalidArgument(Napi::Env env, const std::string& message) {
  Napi::Error err = Napi::TypeError::New(env, message);
  err.Set("code", Napi::String::New(env, "ERR_INVALID_ARGUMENT"));
  return err;
}

}  // namespace nsnet
