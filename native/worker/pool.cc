#include "pool.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace nsnet {
namespace pool {
namespace {

constexpr unsigned kMaxIdle = 4;

struct State {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> jobs;  // guarded by mu
  unsigned idle = 0;                       // threads waiting for a job, guarded by mu
  unsigned long started = 0;               // guarded by mu
};

// Leaked on purpose: detached threads may still wait on it while the process exits.
State& S() {
  static State* s = new State();
  return *s;
}

void Body() {
  State& s = S();
  // The namespace this thread was born in (the process's): it returns there after each job.
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  std::unique_lock<std::mutex> lock(s.mu);
  for (;;) {
    while (s.jobs.empty()) {
      s.idle++;
      s.cv.wait(lock);
      s.idle--;
    }
    std::function<void()> job = std::move(s.jobs.front());
    s.jobs.pop_front();
    lock.unlock();
    job();
    job = nullptr;
    bool home_again = home >= 0 && setns(home, CLONE_NEWNET) == 0;
    lock.lock();
    if (!home_again || s.idle >= kMaxIdle) break;
  }
  lock.unlock();
  if (home >= 0) close(home);
}

}  // namespace

void Run(std::function<void()> job) {
  State& s = S();
  bool spawn;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.jobs.push_back(std::move(job));
    // Every queued job needs a thread of its own: none may wait behind a blocked one.
    spawn = s.jobs.size() > s.idle;
    if (spawn) s.started++;
  }
  if (spawn)
    std::thread(Body).detach();
  else
    s.cv.notify_one();
}

void RunAndWait(const std::function<void()>& job) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Run([&] {
    job();
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
}

unsigned long ThreadsStarted() {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.started;
}

}  // namespace pool
}  // namespace nsnet
