#include "pool.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace nsnet {
namespace pool {
namespace {

// A thread idle this long exits, unless it is the last one: the pool shrinks back after a
// burst (the process keeps one thread, not the most it ever needed).
constexpr auto kIdleExit = std::chrono::seconds(2);

struct State {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> jobs;  // guarded by mu
  unsigned idle = 0;                       // threads waiting for a job, guarded by mu
  unsigned threads = 0;                    // threads alive, guarded by mu
  unsigned long started = 0;               // guarded by mu
  // The process's own network namespace (the main thread's: it never changes namespace),
  // opened once: every pooled thread goes back to it after each job.
  int home = -1;  // guarded by mu
};

// Leaked on purpose: detached threads may still wait on it while the process exits.
State& S() {
  static State* s = new State();
  return *s;
}

void Body() {
  State& s = S();
  std::unique_lock<std::mutex> lock(s.mu);
  if (s.home < 0) s.home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  const int home = s.home;
  for (;;) {
    bool timed_out = false;
    while (s.jobs.empty() && !timed_out) {
      s.idle++;
      timed_out = s.cv.wait_for(lock, kIdleExit) == std::cv_status::timeout && s.jobs.empty();
      s.idle--;
    }
    if (timed_out && s.threads > 1) break;
    if (s.jobs.empty()) continue;
    std::function<void()> job = std::move(s.jobs.front());
    s.jobs.pop_front();
    lock.unlock();
    job();
    job = nullptr;
    // (Namespaces only: no job changes anything else of its thread.)
    bool home_again = home >= 0 && setns(home, CLONE_NEWNET) == 0;
    lock.lock();
    if (!home_again) break;
  }
  s.threads--;
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
    if (spawn) {
      s.started++;
      s.threads++;
    }
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
