#include "worker_thread.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "../netlink/codec.h"

namespace nsnet {

WorkerThreadBase::~WorkerThreadBase() { StopThread(); }

nl::SysError WorkerThreadBase::OpenFds(int netns_fd) {
  if (netns_fd >= 0) {
    netns_fd_ = fcntl(netns_fd, F_DUPFD_CLOEXEC, 3);
    if (netns_fd_ < 0) return {errno, nl::ErrnoCode(errno), "dup of the namespace fd failed"};
  }
  cancel_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (cancel_fd_ < 0) return {errno, nl::ErrnoCode(errno), "eventfd failed"};
  return {};
}

void WorkerThreadBase::StartThread(napi_env env, std::function<void()> body, std::function<void()> after_join) {
  env_ = env;
  after_join_ = std::move(after_join);
  napi_add_env_cleanup_hook(env, CleanupHook, this);
  thread_ = std::thread(std::move(body));
}

void WorkerThreadBase::CleanupHook(void* arg) { static_cast<WorkerThreadBase*>(arg)->StopThread(); }

void WorkerThreadBase::StopThread() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    // Wakes a netlink call blocked in the kernel (it returns ERR_HANDLE_CLOSED). One write per
    // stop: the eventfd cannot be full, so the result needs no handling.
    uint64_t one = 1;
    if (write(cancel_fd_, &one, sizeof one) < 0) {
    }
    thread_.join();
    if (after_join_) after_join_();
    napi_remove_env_cleanup_hook(env_, CleanupHook, this);
  }
  if (cancel_fd_ >= 0) close(cancel_fd_);
  if (netns_fd_ >= 0) close(netns_fd_);
  cancel_fd_ = netns_fd_ = -1;
}

bool WorkerThreadBase::WaitUntil(std::unique_lock<std::mutex>& lock, const std::function<bool()>& ready) {
  cv_.wait(lock, [&] { return stopping_ || ready(); });
  return !stopping_;
}

}  // namespace nsnet
