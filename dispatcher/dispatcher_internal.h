#pragma once

// Dispatcher's private state, shared by its files (dispatcher.cc,
// dispatcher_runners.cc, dispatcher_inspect.cc). Internal to dispatcher.

#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "dispatcher/dispatcher.h"

namespace tusk::dispatcher {

// The job a driver runs now.
struct Dispatcher::ActiveJob {
  JobInfo job;  // with live counts
  PipelineSpec spec;
  ResolvedInputs inputs;
  JobPlan plan;
  DatumQueue queue;  // the datums to run (guarded by the dispatcher's mu_)
  absl::Time deadline = absl::InfiniteFuture();
};

struct Dispatcher::Driver {
  std::string name;
  PipelineInfo info;
  std::thread thread;
  bool stop = false;
  bool wake = true;
  uint64_t scan_from = 0;  // jobs before this seq are done
  std::unique_ptr<ActiveJob> active;
  std::map<std::string, std::string> kill;  // jobs to end (StopJob): id -> reason
  std::string sandbox;                 // as its runners last reported it (LeaseRequest.sandbox)
  absl::Time last_busy = absl::Now();  // when its job last had datums to run
};

// Whether a job has ended (a JOB_EGRESSING job has not: its copy goes on).
inline bool Terminal(pps::v1::JobState s) {
  return s == pps::v1::JOB_SUCCESS || s == pps::v1::JOB_FAILURE || s == pps::v1::JOB_KILLED ||
         s == pps::v1::JOB_UNRUNNABLE;
}

}  // namespace tusk::dispatcher
