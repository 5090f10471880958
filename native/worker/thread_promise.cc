#include "thread_promise.h"

#include "errors.h"
#include "pool.h"

namespace nsnet {
namespace {

struct Job {
  Napi::Promise::Deferred deferred;
  std::function<ThreadResult()> fn;
  ThreadResult result;
  explicit Job(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

void Settle(Napi::Env env, Napi::Function, std::nullptr_t*, Job* job) {
  if (env != nullptr) {
    if (job->result.error.ok())
      job->deferred.Resolve(job->result.make_value ? job->result.make_value(env) : env.Undefined());
    else
      job->deferred.Reject(MakeError(env, job->result.error).Value());
  }
  delete job;
}

using Tsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, Job, Settle>;

}  // namespace

Napi::Promise RunOnThread(Napi::Env env, const char* name, std::function<ThreadResult()> fn) {
  Job* job = new Job(env);
  job->fn = std::move(fn);
  Napi::Promise promise = job->deferred.Promise();
  Tsfn tsfn = Tsfn::New(env, name, 0, 1);
  pool::Run([job, tsfn]() mutable {
    job->result = job->fn();
    job->fn = nullptr;
    // The environment is shutting down: nobody will settle the promise.
    if (tsfn.BlockingCall(job) != napi_ok) delete job;
    tsfn.Release();
  });
  return promise;
}

}  // namespace nsnet
