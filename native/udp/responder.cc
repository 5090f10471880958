#include "responder.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../worker/errors.h"
#include "change_watch.h"

namespace nsnet {

namespace {

constexpr int kBatch = 32;
// Longer datagrams are dropped (MSG_TRUNC): a DNS query is a few dozen bytes, and a TCP client
// is what sends a long message.
constexpr size_t kSlot = 4096;
// Batches per wake-up at most, so that a flood cannot hold the event loop.
constexpr int kRounds = 8;

// An address as the table's key begins: 4 (IPv4, v4-mapped IPv6 included) or 6, then its bytes.
void AppendAddress(std::string& key, const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    key.push_back(4);
    key.append(reinterpret_cast<const char*>(&a.sin_addr), 4);
    return;
  }
  const auto& a6 = reinterpret_cast<const sockaddr_in6&>(ss);
  if (IN6_IS_ADDR_V4MAPPED(&a6.sin6_addr)) {
    key.push_back(4);
    key.append(reinterpret_cast<const char*>(&a6.sin6_addr) + 12, 4);
    return;
  }
  key.push_back(6);
  key.append(reinterpret_cast<const char*>(&a6.sin6_addr), 16);
}

// A literal address (IPv6 with an optional %scope: a number or an interface name) and port.
bool ParseAddress(const std::string& text, uint16_t port, sockaddr_storage& ss, socklen_t& len) {
  memset(&ss, 0, sizeof ss);
  auto* a = reinterpret_cast<sockaddr_in*>(&ss);
  if (inet_pton(AF_INET, text.c_str(), &a->sin_addr) == 1) {
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
  std::string host = text;
  size_t pct = text.find('%');
  if (pct != std::string::npos) {
    host = text.substr(0, pct);
    std::string scope = text.substr(pct + 1);
    char* end = nullptr;
    unsigned long n = strtoul(scope.c_str(), &end, 10);
    a6->sin6_scope_id =
        (!scope.empty() && end && *end == '\0') ? static_cast<uint32_t>(n) : if_nametoindex(scope.c_str());
  }
  if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) != 1) return false;
  a6->sin6_family = AF_INET6;
  a6->sin6_port = htons(port);
  len = sizeof(sockaddr_in6);
  return true;
}

std::string AddressText(const sockaddr_storage& ss, uint16_t& port) {
  char text[INET6_ADDRSTRLEN + 16] = "";
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
    port = ntohs(a.sin_port);
    return text;
  }
  const auto& a6 = reinterpret_cast<const sockaddr_in6&>(ss);
  port = ntohs(a6.sin6_port);
  if (IN6_IS_ADDR_V4MAPPED(&a6.sin6_addr)) {
    inet_ntop(AF_INET, reinterpret_cast<const uint8_t*>(&a6.sin6_addr) + 12, text, sizeof text);
    return text;
  }
  inet_ntop(AF_INET6, &a6.sin6_addr, text, sizeof text);
  std::string s = text;
  if (a6.sin6_scope_id) s += "%" + std::to_string(a6.sin6_scope_id);
  return s;
}

}  // namespace

Napi::Function UdpResponder::Init(Napi::Env env) {
  return DefineClass(env, "UdpResponder",
                     {InstanceMethod<&UdpResponder::Remember>("remember"),
                      InstanceMethod<&UdpResponder::Forget>("forget"), InstanceMethod<&UdpResponder::Send>("send"),
                      InstanceMethod<&UdpResponder::Hits>("hits"), InstanceMethod<&UdpResponder::Close>("close")});
}

UdpResponder::UdpResponder(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UdpResponder>(info) {
  Napi::Env env = info.Env();
  bool watchOk = info.Length() >= 3 && (info[1].IsNull() || info[1].IsObject());
  if (!watchOk || !info[0].IsNumber() || !info[2].IsFunction()) {
    InvalidArgument(env, "new UdpResponder(fd, watch | null, onMiss)").ThrowAsJavaScriptException();
    return;
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (info[1].IsObject()) {
    Napi::Object w = info[1].As<Napi::Object>();
    if (w.CheckTypeTag(&kChangeWatchTag)) watch_ = Napi::ObjectWrap<ChangeWatch>::Unwrap(w);
    if (!watch_) {
      InvalidArgument(env, "new UdpResponder(fd, watch | null, onMiss): watch is not a ChangeWatch")
          .ThrowAsJavaScriptException();
      return;
    }
    watch_ref_ = Napi::Persistent(w);
  }
  int flags = fcntl(fd, F_GETFL);
  uv_loop_t* loop = nullptr;
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || napi_get_uv_event_loop(env, &loop) != napi_ok) {
    int e = errno;
    MakeError(env, nl::SysError{e, "EBADF", std::string("cannot serve fd ") + std::to_string(fd) + ": " + strerror(e)})
        .ThrowAsJavaScriptException();
    return;
  }
  poll_ = new Poll{};
  poll_->owner = this;
  int rc = uv_poll_init(loop, &poll_->handle, fd);
  if (rc == 0) rc = uv_poll_start(&poll_->handle, UV_READABLE, &UdpResponder::OnReadable);
  if (rc != 0) {
    delete poll_;  // uv_poll_init failing leaves nothing registered
    poll_ = nullptr;
    MakeError(env, nl::SysError{-rc, "ERR_NATIVE",
                                std::string("cannot poll fd ") + std::to_string(fd) + ": " + uv_strerror(rc)})
        .ThrowAsJavaScriptException();
    return;
  }
  fd_ = fd;
  on_miss_ = Napi::Persistent(info[2].As<Napi::Function>());
  context_ = new Napi::AsyncContext(env, "nsnet.udpResponder");
  buf_.resize(kBatch * kSlot);
  Ref();  // alive while open, like a listening socket: the callback must stay reachable
}

UdpResponder::~UdpResponder() { CloseAll(); }

void UdpResponder::CloseAll() {
  if (poll_) {
    uv_poll_stop(&poll_->handle);
    poll_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_->handle), [](uv_handle_t* h) { delete reinterpret_cast<Poll*>(h); });
    poll_ = nullptr;
  }
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  table_.clear();
  delete context_;
  context_ = nullptr;
}

int64_t UdpResponder::Current() {
  int64_t g = watch_ ? watch_->Generation() : -1;
  if (g != generation_) {
    table_.clear();
    generation_ = g;
  }
  return g;
}

void UdpResponder::OnReadable(uv_poll_t* handle, int status, int /*events*/) {
  UdpResponder* self = reinterpret_cast<Poll*>(handle)->owner;
  if (!self || status < 0) return;
  self->Drain();
}

void UdpResponder::Drain() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  mmsghdr in[kBatch];
  iovec in_iov[kBatch];
  sockaddr_storage from[kBatch];
  mmsghdr out[kBatch];
  iovec out_iov[kBatch][2];
  int misses[kBatch];
  for (int round = 0; round < kRounds && fd_ >= 0; round++) {
    memset(in, 0, sizeof in);
    for (int i = 0; i < kBatch; i++) {
      in_iov[i] = {buf_.data() + i * kSlot, kSlot};
      in[i].msg_hdr.msg_iov = &in_iov[i];
      in[i].msg_hdr.msg_iovlen = 1;
      in[i].msg_hdr.msg_name = &from[i];
      in[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int n = recvmmsg(fd_, in, kBatch, MSG_DONTWAIT, nullptr);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // EAGAIN: drained (other errors: the next wake-up tries again)
    // After the batch is read: every change that returned before one of them was sent is seen.
    int64_t gen = Current();
    int hits = 0;
    int nmiss = 0;
    std::string key;
    for (int i = 0; i < n; i++) {
      const auto* data = buf_.data() + i * kSlot;
      size_t len = in[i].msg_len;
      if (in[i].msg_hdr.msg_flags & MSG_TRUNC) continue;
      if (gen >= 0 && len >= 12 && len <= kMaxDatagram) {
        key.clear();
        AppendAddress(key, from[i]);
        key.append(reinterpret_cast<const char*>(data) + 2, len - 2);
        auto it = table_.find(key);
        if (it != table_.end()) {
          const std::string& r = it->second.reply;
          hits_[it->second.tag]++;
          out_iov[hits][0] = {const_cast<uint8_t*>(data), 2};
          out_iov[hits][1] = {const_cast<char*>(r.data()) + 2, r.size() - 2};
          memset(&out[hits], 0, sizeof out[hits]);
          out[hits].msg_hdr.msg_iov = out_iov[hits];
          out[hits].msg_hdr.msg_iovlen = 2;
          out[hits].msg_hdr.msg_name = &from[i];
          out[hits].msg_hdr.msg_namelen = in[i].msg_hdr.msg_namelen;
          hits++;
          continue;
        }
      }
      misses[nmiss++] = i;
    }
    for (int sent = 0; sent < hits;) {
      int m = sendmmsg(fd_, out + sent, hits - sent, MSG_DONTWAIT);
      if (m < 0 && errno == EINTR) continue;
      if (m <= 0) break;  // the send buffer is full or the client vanished: a lost reply, as in UDP
      sent += m;
    }
    // The rest to JS. It may answer, remember, forget or close in the callback.
    for (int k = 0; k < nmiss && fd_ >= 0; k++) {
      int i = misses[k];
      uint16_t port = 0;
      std::string address = AddressText(from[i], port);
      Napi::Value args[] = {Napi::Buffer<uint8_t>::Copy(env, buf_.data() + i * kSlot, in[i].msg_len),
                            Napi::String::New(env, address), Napi::Number::New(env, port)};
      on_miss_.MakeCallback(Value(), {args[0], args[1], args[2]}, *context_);
      if (env.IsExceptionPending()) {
        Napi::Error e = env.GetAndClearPendingException();
        napi_fatal_exception(env, e.Value());
      }
    }
    if (n < kBatch) return;
  }
}

Napi::Value UdpResponder::Remember(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsBuffer() || !info[1].IsString() || !info[2].IsBuffer() || !info[3].IsNumber() ||
      !info[4].IsNumber()) {
    InvalidArgument(env, "remember(request, address, reply, tag, generation)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto req = info[0].As<Napi::Buffer<uint8_t>>();
  auto reply = info[2].As<Napi::Buffer<uint8_t>>();
  uint32_t tag = info[3].As<Napi::Number>().Uint32Value();
  int64_t want = info[4].As<Napi::Number>().Int64Value();
  sockaddr_storage ss;
  socklen_t sl;
  if (fd_ < 0 || tag >= kTags || req.Length() < 12 || req.Length() > kMaxDatagram || reply.Length() < 12 ||
      !ParseAddress(info[1].As<Napi::String>().Utf8Value(), 0, ss, sl))
    return Napi::Boolean::New(env, false);
  int64_t gen = Current();
  if (gen < 0 || gen != want) return Napi::Boolean::New(env, false);
  if (table_.size() >= kMaxEntries) table_.clear();  // random names cannot grow it without bound
  std::string key;
  AppendAddress(key, ss);
  key.append(reinterpret_cast<const char*>(req.Data()) + 2, req.Length() - 2);
  table_[key] =
      Entry{std::string(reinterpret_cast<const char*>(reply.Data()), reply.Length()), static_cast<uint8_t>(tag)};
  return Napi::Boolean::New(env, true);
}

Napi::Value UdpResponder::Forget(const Napi::CallbackInfo& info) {
  table_.clear();
  return info.Env().Undefined();
}

Napi::Value UdpResponder::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsBuffer() || !info[1].IsString() || !info[2].IsNumber()) {
    InvalidArgument(env, "send(datagram, address, port)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto data = info[0].As<Napi::Buffer<uint8_t>>();
  sockaddr_storage ss;
  socklen_t sl = 0;
  if (fd_ < 0 || !ParseAddress(info[1].As<Napi::String>().Utf8Value(),
                               static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value()), ss, sl))
    return Napi::Boolean::New(env, false);
  ssize_t n;
  do n = sendto(fd_, data.Data(), data.Length(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss), sl);
  while (n < 0 && errno == EINTR);
  return Napi::Boolean::New(env, n >= 0);
}

Napi::Value UdpResponder::Hits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array a = Napi::Array::New(env, kTags);
  for (uint32_t i = 0; i < kTags; i++) a.Set(i, Napi::Number::New(env, hits_[i]));
  return a;
}

Napi::Value UdpResponder::Close(const Napi::CallbackInfo& info) {
  if (fd_ >= 0) {
    CloseAll();
    on_miss_.Reset();
    watch_ref_.Reset();
    watch_ = nullptr;
    Unref();
  }
  return info.Env().Undefined();
}

}  // namespace nsnet
