#pragma once

#include <napi.h>

namespace nsnet {
Napi::Value NsType(const Napi::CallbackInfo& info);
Napi::Value NetnsCreate(const Napi::CallbackInfo& info);
Napi::Value NetnsRemove(const Napi::CallbackInfo& info);
Napi::Value Sysctl(const Napi::CallbackInfo& info);
Napi::Value LockFile(const Napi::CallbackInfo& info);
Napi::Value TryLockFile(const Napi::CallbackInfo& info);
Napi::Value InetSocket(const Napi::CallbackInfo& info);
}  // namespace nsnet
