// Network namespaces: create (bind-mounted at /run/netns/NAME the way iproute2 does, so
// `ip netns` sees it, with loopback up), remove, identify, per-namespace sysctls, and flock.
// Every namespace switch happens on a fresh thread that exits afterwards.
#include "netns.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/nsfs.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "../netlink/attr.h"
#include "../netlink/codec.h"
#include "../netlink/socket.h"
#include "../worker/errors.h"
#include "../worker/thread_promise.h"

namespace nsnet {
namespace {

nl::SysError Errno(int err, const std::string& what) {
  return {err, nl::ErrnoCode(err), what + ": " + std::strerror(err)};
}

const char* NsTypeName(int type) {
  switch (type) {
    case CLONE_NEWNET:
      return "net";
    case CLONE_NEWNS:
      return "mnt";
    case CLONE_NEWPID:
      return "pid";
    case CLONE_NEWUTS:
      return "uts";
    case CLONE_NEWIPC:
      return "ipc";
    case CLONE_NEWUSER:
      return "user";
    case CLONE_NEWCGROUP:
      return "cgroup";
    default:
      return "unknown";
  }
}

// Brings loopback up in the calling thread's network namespace.
nl::SysError LoopbackUp() {
  nl::Socket sock;
  nl::SysError err = sock.Open(NETLINK_ROUTE, -1, {});
  if (!err.ok()) return err;
  nl::Builder b;
  b.BeginMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 0);
  ifinfomsg ifi{};
  ifi.ifi_index = 1;  // loopback is always ifindex 1 in a new namespace
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  b.PutHeader(&ifi, sizeof ifi);
  b.EndMessage();
  nl::Request req;
  req.bytes = b.Bytes();
  nl::MsgResult m;
  m.offset = 0;
  m.len = req.bytes.size();
  m.type = RTM_NEWLINK;
  req.msgs.push_back(m);
  sock.Transact(req, -1);
  if (!req.error.ok()) return req.error;
  if (req.msgs[0].err) return Errno(req.msgs[0].err, "loopback up");
  return {};
}

// Makes `dir` a shared mount point, as iproute2 does for /run/netns, so that namespaces
// mounted under it propagate to other mount namespaces.
nl::SysError PrepareDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return Errno(errno, "mkdir " + dir);
  if (mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) == 0) return {};
  if (errno != EINVAL) return Errno(errno, "mount --make-rshared " + dir);
  if (mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0)
    return Errno(errno, "mount --bind " + dir);
  if (mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0)
    return Errno(errno, "mount --make-rshared " + dir);
  return {};
}

// Keys are "net.ipv4.ip_forward" or "net/ipv4/conf/eth0.100/forwarding". Only the per-network-
// namespace tree (net.*) is allowed: other sysctls are global to the machine.
bool SysctlPath(const std::string& key, std::string* path) {
  bool slash = key.find('/') != std::string::npos;
  if (key.size() < 5 || key.size() > 255 || key.compare(0, 4, slash ? "net/" : "net.") != 0) return false;
  if (key.find("..") != std::string::npos || key.find("//") != std::string::npos) return false;
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.' || c == '/' || c == '@' || c == ':';
    if (!ok) return false;
  }
  std::string p = key;
  if (!slash)
    for (char& c : p)
      if (c == '.') c = '/';
  *path = "/proc/sys/" + p;
  return true;
}

Napi::Value Str(Napi::Env env, const Napi::Value& v, const char* what, std::string* out) {
  if (!v.IsString()) {
    InvalidArgument(env, std::string(what) + " must be a string").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  *out = v.As<Napi::String>().Utf8Value();
  return v;
}

}  // namespace

// nsType(path | fd) -> "net" | "mnt" | ... ; throws with the errno code when it cannot be opened,
// ERR_NOT_A_NAMESPACE when it is not a namespace file.
Napi::Value NsType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  bool owned = false;
  if (info.Length() > 0 && info[0].IsNumber()) {
    fd = info[0].As<Napi::Number>().Int32Value();
  } else if (info.Length() > 0 && info[0].IsString()) {
    std::string path = info[0].As<Napi::String>().Utf8Value();
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      MakeError(env, Errno(errno, "open " + path)).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    owned = true;
  } else {
    InvalidArgument(env, "nsType(path | fd)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int type = ioctl(fd, NS_GET_NSTYPE);
  int err = errno;
  struct stat st {};
  fstat(fd, &st);
  if (owned) close(fd);
  if (type < 0) {
    MakeError(env, {err, "ERR_NOT_A_NAMESPACE", "not a namespace file"}).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("type", Napi::String::New(env, NsTypeName(type)));
  r.Set("inode", Napi::Number::New(env, static_cast<double>(st.st_ino)));
  r.Set("dev", Napi::Number::New(env, static_cast<double>(st.st_dev)));
  return r;
}

// netnsCreate(dir, name) -> Promise<void>
Napi::Value NetnsCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir, name;
  if (Str(env, info[0], "dir", &dir).IsUndefined() || Str(env, info[1], "name", &name).IsUndefined())
    return env.Undefined();
  return RunOnThread(env, "nsnet.netnsCreate", [dir, name]() -> ThreadResult {
    ThreadResult r;
    r.error = PrepareDir(dir);
    if (!r.error.ok()) return r;
    std::string path = dir + "/" + name;
    int fd = open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0) {
      r.error = Errno(errno, "create " + path);
      return r;
    }
    close(fd);
    // This thread only: it leaves the namespace it was born in and exits when done.
    if (unshare(CLONE_NEWNET) != 0)
      r.error = Errno(errno, "unshare(CLONE_NEWNET)");
    else if (mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0)
      r.error = Errno(errno, "bind mount " + path);
    else
      r.error = LoopbackUp();
    if (!r.error.ok()) {
      umount2(path.c_str(), MNT_DETACH);
      unlink(path.c_str());
    }
    return r;
  });
}

// netnsRemove(path) -> Promise<void>
Napi::Value NetnsRemove(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (Str(env, info[0], "path", &path).IsUndefined()) return env.Undefined();
  return RunOnThread(env, "nsnet.netnsRemove", [path]() -> ThreadResult {
    ThreadResult r;
    if (umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL) {
      r.error = Errno(errno, "umount " + path);
      return r;
    }
    if (unlink(path.c_str()) != 0) r.error = Errno(errno, "unlink " + path);
    return r;
  });
}

// sysctl(netnsFd, key, value?) -> Promise<string>: reads (or writes, then returns the value
// read back) a net.* sysctl inside the namespace.
Napi::Value Sysctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string key, value, path;
  if (info.Length() < 2 || !info[0].IsNumber()) {
    InvalidArgument(env, "sysctl(netnsFd, key, value?)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (Str(env, info[1], "key", &key).IsUndefined()) return env.Undefined();
  bool write_it = info.Length() > 2 && !info[2].IsUndefined();
  if (write_it && Str(env, info[2], "value", &value).IsUndefined()) return env.Undefined();
  if (!SysctlPath(key, &path)) {
    InvalidArgument(env, "invalid sysctl key '" + key + "': only net.* keys are per-namespace")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int nsfd = fcntl(info[0].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 3);
  if (nsfd < 0) {
    MakeError(env, Errno(errno, "dup")).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return RunOnThread(env, "nsnet.sysctl", [nsfd, path, value, write_it]() -> ThreadResult {
    ThreadResult r;
    int rc = setns(nsfd, CLONE_NEWNET);
    close(nsfd);
    if (rc != 0) {
      r.error = Errno(errno, "setns");
      return r;
    }
    if (write_it) {
      int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) {
        r.error = Errno(errno, "open " + path);
        return r;
      }
      ssize_t n = write(fd, value.data(), value.size());
      int err = errno;
      close(fd);
      if (n != static_cast<ssize_t>(value.size())) {
        r.error = Errno(n < 0 ? err : EIO, "write " + path);
        return r;
      }
    }
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      r.error = Errno(errno, "open " + path);
      return r;
    }
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    int err = errno;
    close(fd);
    if (n < 0) {
      r.error = Errno(err, "read " + path);
      return r;
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    r.make_value = [out](Napi::Env e) -> Napi::Value { return Napi::String::New(e, out); };
    return r;
  });
}

// lockFile(path, exclusive, wait, create) -> Promise<number>: an fd holding a flock(2). The kernel
// releases it when the fd is closed or the process dies. Waiting happens off the event loop.
// create (default true) false: a missing file is ENOENT, not made (a lock whose directory was
// removed must not bring the file back).
Napi::Value LockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (Str(env, info[0], "path", &path).IsUndefined()) return env.Undefined();
  bool exclusive = info.Length() < 2 || info[1].ToBoolean().Value();
  bool wait = info.Length() < 3 || info[2].ToBoolean().Value();
  bool create = info.Length() < 4 || info[3].ToBoolean().Value();
  return RunOnThread(env, "nsnet.lockFile", [path, exclusive, wait, create]() -> ThreadResult {
    ThreadResult r;
    int fd = open(path.c_str(), O_RDWR | (create ? O_CREAT : 0) | O_CLOEXEC, 0644);
    if (fd < 0) {
      r.error = Errno(errno, "open " + path);
      return r;
    }
    int op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
    int rc;
    do rc = flock(fd, op);
    while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      r.error = Errno(errno, "flock " + path);
      if (errno == EWOULDBLOCK) {
        r.error.code = "ERR_LOCKED";
        r.error.message = path + " is locked by another holder";
      }
      close(fd);
      return r;
    }
    r.make_value = [fd](Napi::Env e) -> Napi::Value { return Napi::Number::New(e, fd); };
    return r;
  });
}

// tryLockFile(path, exclusive, create) -> number: an fd holding a flock(2), or -1 when another
// holder has it (LOCK_NB); create as for lockFile. Synchronous: open + flock, no thread; lockFile() waits on a pooled
// thread when this says -1.
Napi::Value TryLockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (Str(env, info[0], "path", &path).IsUndefined()) return env.Undefined();
  bool exclusive = info.Length() < 2 || info[1].ToBoolean().Value();
  bool create = info.Length() < 3 || info[2].ToBoolean().Value();
  int fd = open(path.c_str(), O_RDWR | (create ? O_CREAT : 0) | O_CLOEXEC, 0644);
  if (fd < 0) {
    MakeError(env, Errno(errno, "open " + path)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int rc;
  do rc = flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    close(fd);
    if (err == EWOULDBLOCK) return Napi::Number::New(env, -1);
    MakeError(env, Errno(err, "flock " + path)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

}  // namespace nsnet
