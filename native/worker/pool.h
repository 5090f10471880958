// A small pool of long-lived threads for blocking jobs: flock waits, namespace work (sysctl,
// sockets made inside a namespace), one-shot netlink exchanges in another namespace, syncfs.
// Once the pool is warm no operation creates a thread (issue 18: connect in steady state).
//
//   - A job never waits behind another (one may block for long: a flock wait): when no pooled
//     thread is idle, a new one is started for it.
//   - A job may setns(CLONE_NEWNET) or unshare(CLONE_NEWNET): after every job the thread goes
//     back to the process's network namespace, so a namespace is never kept alive by a pooled
//     thread (a container's namespace, and the veth end in it, go away when it exits). A
//     thread that cannot go back exits instead of serving another job.
//   - A thread idle for 2 s exits, unless it is the last one: after a burst the pool shrinks
//     back to one thread (and one fd, the process's namespace, opened once).
//   - These are threads of nsnet's own: never the main thread, never a libuv pool thread.
// The pool is process-wide and never destroyed (its threads are detached and die with the
// process), so no static destructor races a thread that is still waiting.
#pragma once

#include <functional>

namespace nsnet {
namespace pool {

// Runs `job` on a pooled thread; never blocks the caller.
void Run(std::function<void()> job);

// Runs `job` on a pooled thread and waits for it (for callers that are themselves worker
// threads, never the main thread).
void RunAndWait(const std::function<void()>& job);

// Threads started since the process began (for tests and the benchmark's accounting).
unsigned long ThreadsStarted();

}  // namespace pool
}  // namespace nsnet
