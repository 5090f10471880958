// The worker thread a handle owns (DESIGN.md, "The native layer"): one std::thread per Handle
// or Monitor, never the main thread and never a libuv pool thread. This is the plumbing they
// share:
//
//   - the namespace fd the thread opens its socket in (a private dup) and the cancel eventfd
//     that interrupts a netlink call blocked in the kernel (the call returns ERR_HANDLE_CLOSED);
//   - a request queue (main thread pushes, worker pops; a Monitor, which only reads, leaves it
//     empty);
//   - delivery of results to the main thread through one thread-safe function;
//   - the shutdown sequence, the same from close(), the destructor and the environment's
//     teardown: mark stopping (wakes the queue), write the eventfd (wakes the kernel wait), join,
//     release the TSFN, drop the env cleanup hook, close the fds. Idempotent.
//
// The thread never setns()es: nl::Socket::Open does that on a short-lived thread of its own.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "../netlink/socket.h"

namespace nsnet {

// The part that does not depend on what is queued or delivered (worker_thread.cc).
class WorkerThreadBase {
 public:
  WorkerThreadBase(const WorkerThreadBase&) = delete;
  WorkerThreadBase& operator=(const WorkerThreadBase&) = delete;

  // The namespace to open the socket in (-1: the caller's own). Worker side.
  int netns_fd() const { return netns_fd_; }
  // Readable once Stop() has begun: pass it to every blocking nl::Socket call. Worker side.
  int cancel_fd() const { return cancel_fd_; }
  // Started and not stopped yet. Main thread.
  bool running() const { return thread_.joinable(); }

 protected:
  WorkerThreadBase() = default;
  ~WorkerThreadBase();

  // Duplicates `netns_fd` (F_DUPFD_CLOEXEC; the caller keeps its own; < 0: none) and creates
  // the cancel eventfd. On failure returns the error; the fds made so far close on Stop().
  nl::SysError OpenFds(int netns_fd);
  // Runs `body` on the new thread and registers the env cleanup hook. `after_join` runs in
  // Stop() once the thread is gone (it releases the thread-safe function).
  void StartThread(napi_env env, std::function<void()> body, std::function<void()> after_join);
  void StopThread();

  // Worker: blocks until `ready()` (called with mu_ held) or Stop(); false on Stop().
  bool WaitUntil(std::unique_lock<std::mutex>& lock, const std::function<bool()>& ready);
  // Main thread, after changing what `ready()` looks at under mu_: wakes the worker.
  void Notify() { cv_.notify_all(); }

  std::mutex mu_;

 private:
  static void CleanupHook(void* arg);

  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  int netns_fd_ = -1;
  int cancel_fd_ = -1;
  std::thread thread_;
  std::function<void()> after_join_;
  napi_env env_ = nullptr;
};

// A worker thread that takes `Data` from a queue and hands `Data` back to `Deliver` on the
// main thread. `Deliver` gets the owner as its context and takes ownership of the data; env is
// nullptr when the environment is going away. Owners call Stop() in their own destructor,
// before their members go: the thread's body uses them.
template <typename Owner, typename Data, void (*Deliver)(Napi::Env, Napi::Function, Owner*, Data*)>
class WorkerThread : public WorkerThreadBase {
 public:
  using Tsfn = Napi::TypedThreadSafeFunction<Owner, Data, Deliver>;

  WorkerThread() = default;
  ~WorkerThread() { Stop(); }

  // Main thread: sets up the fds and the thread-safe function (`callback` may be empty: then
  // Deliver gets an empty Function), then runs `body` on the new thread. Nothing is started
  // when it returns an error.
  nl::SysError Start(Napi::Env env, const char* name, Owner* owner, int netns_fd, Napi::Function callback,
                     std::function<void()> body) {
    nl::SysError err = OpenFds(netns_fd);
    if (!err.ok()) return err;
    tsfn_ = callback.IsEmpty() ? Tsfn::New(env, name, 0, 1, owner) : Tsfn::New(env, callback, name, 0, 1, owner);
    StartThread(env, std::move(body), [this] { tsfn_.Release(); });
    return {};
  }

  // Main thread. The worker first finishes or abandons what it is doing (see the file comment);
  // Deliver still runs for what it posted before it saw the stop.
  void Stop() { StopThread(); }

  // Main thread: whether a delivery still pending keeps the process alive.
  void Ref(Napi::Env env) { tsfn_.Ref(env); }
  void Unref(Napi::Env env) { tsfn_.Unref(env); }

  // Main thread: queues an item for the worker.
  void Push(std::unique_ptr<Data> item) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(item));
    }
    Notify();
  }

  // Worker: the next item, or nullptr once Stop() has begun (the items still queued are then
  // moved into `unsent`, in order).
  std::unique_ptr<Data> Next(std::deque<std::unique_ptr<Data>>& unsent) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!WaitUntil(lock, [this] { return !queue_.empty(); })) {
      unsent.swap(queue_);
      return nullptr;
    }
    std::unique_ptr<Data> item = std::move(queue_.front());
    queue_.pop_front();
    return item;
  }

  // Worker: hands `result` to Deliver on the main thread; blocks while the TSFN's queue is
  // full. False when the environment is going away: the result is freed here and the worker
  // should return.
  bool Post(std::unique_ptr<Data> result) {
    if (tsfn_.BlockingCall(result.get()) != napi_ok) return false;
    result.release();  // Deliver owns it now
    return true;
  }

 private:
  Tsfn tsfn_;
  std::deque<std::unique_ptr<Data>> queue_;  // guarded by mu_
};

}  // namespace nsnet
