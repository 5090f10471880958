// An IPv4/IPv6 UDP or TCP socket made inside a network namespace, for the event loop to adopt
// by fd (dgram `bind({ fd })`, net `listen({ fd })`, `new net.Socket({ fd })`). The socket is
// created on a fresh thread that setns()s into the namespace and exits; a socket stays in the
// namespace it was created in for its life, so the main thread never changes namespace.
// Reference: socket(7), ip(7) IP_FREEBIND, ipv6(7) IPV6_FREEBIND (linux/in6.h), connect(2).
#include "netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "../netlink/codec.h"
#include "../worker/errors.h"
#include "../worker/thread_promise.h"

#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78  // linux/in6.h, since Linux 4.15
#endif

namespace nsnet {
namespace {

nl::SysError Errno(int err, const std::string& what) {
  return {err, nl::ErrnoCode(err), what + ": " + std::strerror(err)};
}

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

// Parses a literal address (no names: nothing here resolves) and a port into `out`.
bool ParseEndpoint(int family, const std::string& address, int port, Endpoint* out) {
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out->addr);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof(sockaddr_in);
    return address.empty() || inet_pton(AF_INET, address.c_str(), &sin->sin_addr) == 1;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out->addr);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(static_cast<uint16_t>(port));
  out->len = sizeof(sockaddr_in6);
  return address.empty() || inet_pton(AF_INET6, address.c_str(), &sin6->sin6_addr) == 1;
}

struct Spec {
  int family = AF_INET;
  int type = SOCK_DGRAM;
  bool bind = false;
  Endpoint local;
  bool freebind = false;
  bool reuseaddr = false;
  bool connect = false;
  Endpoint remote;
  int timeout_ms = 2000;
  std::string describe;
};

// Waits for a non-blocking connect to finish (or the timeout); 0 or an errno.
int FinishConnect(int fd, int timeout_ms) {
  pollfd p{fd, POLLOUT, 0};
  int rc;
  do rc = poll(&p, 1, timeout_ms);
  while (rc < 0 && errno == EINTR);
  if (rc == 0) return ETIMEDOUT;
  if (rc < 0) return errno;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

// Runs on the job thread, already inside the namespace.
ThreadResult MakeSocket(const Spec& s) {
  ThreadResult r;
  int fd = socket(s.family, s.type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    r.error = Errno(errno, "socket");
    return r;
  }
  int one = 1;
  const char* step = nullptr;
  if (s.reuseaddr && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) step = "SO_REUSEADDR";
  // Freebind: bind an address the namespace does not have yet (a bridge still being made, an
  // IPv6 address still tentative); the socket receives as soon as the address appears.
  else if (s.freebind && s.family == AF_INET && setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one) != 0)
    step = "IP_FREEBIND";
  else if (s.freebind && s.family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one) != 0)
    step = "IPV6_FREEBIND";
  else if (s.family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
    step = "IPV6_V6ONLY";
  else if (s.bind && bind(fd, reinterpret_cast<const sockaddr*>(&s.local.addr), s.local.len) != 0)
    step = "bind";
  if (step == nullptr && s.connect) {
    int err = 0;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&s.remote.addr), s.remote.len) != 0)
      err = errno == EINPROGRESS ? FinishConnect(fd, s.timeout_ms) : errno;
    if (err != 0) {
      close(fd);
      r.error = Errno(err, "connect " + s.describe);
      return r;
    }
  }
  if (step != nullptr) {
    int err = errno;
    close(fd);
    r.error = Errno(err, std::string(step) + " " + s.describe);
    return r;
  }
  r.make_value = [fd](Napi::Env e) -> Napi::Value { return Napi::Number::New(e, fd); };
  return r;
}

bool GetString(const Napi::Object& o, const char* key, std::string* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return true;
  if (!v.IsString()) return false;
  *out = v.As<Napi::String>().Utf8Value();
  return true;
}

bool GetInt(const Napi::Object& o, const char* key, int lo, int hi, int* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return true;
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != static_cast<int>(d)) return false;
  *out = static_cast<int>(d);
  return true;
}

}  // namespace

// inetSocket(netnsFd, { family: 4 | 6, type: 'udp' | 'tcp', address?, port?, freebind?,
//   reuseAddr?, connect?: { address, port }, timeoutMs? }) -> Promise<fd>
// A non-blocking, close-on-exec socket made in the namespace: bound to address:port when either
// is given, connected (TCP, waiting at most timeoutMs) when `connect` is given. IPv6 sockets are
// v6-only. The caller owns the fd.
Napi::Value InetSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage =
      "inetSocket(netnsFd, { family: 4 | 6, type: 'udp' | 'tcp', address?, port?, freebind?, reuseAddr?, connect?, "
      "timeoutMs? })";
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsObject()) {
    InvalidArgument(env, usage).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = info[1].As<Napi::Object>();
  Spec s;
  int family = 0, port = -1, rport = -1;
  std::string type, address, raddress;
  bool ok = GetInt(o, "family", 4, 6, &family) && (family == 4 || family == 6) && GetString(o, "type", &type) &&
            (type == "udp" || type == "tcp") && GetString(o, "address", &address) &&
            GetInt(o, "port", 0, 65535, &port) && GetInt(o, "timeoutMs", 1, 600000, &s.timeout_ms);
  s.family = family == 6 ? AF_INET6 : AF_INET;
  s.type = type == "tcp" ? SOCK_STREAM : SOCK_DGRAM;
  s.freebind = o.Get("freebind").ToBoolean().Value();
  s.reuseaddr = o.Get("reuseAddr").ToBoolean().Value();
  s.bind = !address.empty() || port >= 0;
  if (ok && s.bind && !ParseEndpoint(s.family, address, port < 0 ? 0 : port, &s.local)) ok = false;
  Napi::Value c = o.Get("connect");
  if (ok && !c.IsUndefined()) {
    ok = c.IsObject() && s.type == SOCK_STREAM && GetString(c.As<Napi::Object>(), "address", &raddress) &&
         GetInt(c.As<Napi::Object>(), "port", 1, 65535, &rport) && !raddress.empty() && rport > 0 &&
         ParseEndpoint(s.family, raddress, rport, &s.remote);
    s.connect = ok;
  }
  if (!ok) {
    InvalidArgument(env, usage).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  s.describe = s.connect ? (family == 6 ? "[" + raddress + "]" : raddress) + ":" + std::to_string(rport)
                         : (family == 6 ? "[" + address + "]" : address) + ":" + std::to_string(port < 0 ? 0 : port);
  int nsfd = fcntl(info[0].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 3);
  if (nsfd < 0) {
    MakeError(env, Errno(errno, "dup")).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return RunOnThread(env, "nsnet.inetSocket", [nsfd, s]() -> ThreadResult {
    int rc = setns(nsfd, CLONE_NEWNET);
    int err = errno;
    close(nsfd);
    if (rc != 0) {
      ThreadResult r;
      r.error = Errno(err, "setns");
      return r;
    }
    return MakeSocket(s);
  });
}

}  // namespace nsnet
