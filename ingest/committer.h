#pragma once

// Committer: lands an Ingester's batches in tuskd as micro-commits, one at a
// time, in a thread of its own. A batch's Kafka offsets are written into its
// commit's metadata, with the parent's offsets as a precondition, in the
// same atomic write that finishes the commit: a batch lands exactly once or
// not at all. While tuskd is unreachable it retries with backoff (full
// jitter) and says why in WaitReason(); a batch built on one that did not
// land comes back Aborted.
//
// Lifecycle: Start() starts the thread; the destructor abandons what is in
// flight and joins it. Thread-safe.

#include <atomic>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ingest/batch.h"
#include "ingest/ingester.h"
#include "proto/ingest.pb.h"
#include "proto/pfs.grpc.pb.h"

namespace tusk::ingest {

class Committer {
 public:
  // Not owned: api (must outlive this).
  Committer(const IngesterOptions& opts, const v1::SourceSpec& spec, pfs::v1::API::Stub* api)
      : opts_(opts), spec_(spec), api_(api) {}
  ~Committer();
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  void Start();

  // The branch head's metadata; empty if the branch has no commit yet.
  // Retries while tuskd is unreachable, until `stop`.
  absl::StatusOr<std::map<std::string, std::string>> ReadHead(const std::atomic<bool>& stop);

  // Whether no batch is in flight.
  bool Idle();
  // Hands `batch` over; the caller checked Idle().
  void Submit(Batch batch);
  // Waits until the in-flight batch (if any) is done, at most `limit`; then
  // (if `give_up`) abandons it. Returns false if it was not done in time.
  bool WaitIdle(absl::Duration limit, bool give_up = true);
  // The outcomes of the batches done since the last call, in order.
  std::deque<CommitResult> TakeResults();
  // Why commits are not landing now ("" if they are).
  std::string WaitReason();

 private:
  void Loop();
  // One attempt at landing `b` as a micro-commit; returns its id.
  absl::StatusOr<std::string> CommitOnce(Batch& b);

  const IngesterOptions opts_;
  const v1::SourceSpec spec_;
  pfs::v1::API::Stub* const api_;
  std::thread thread_;

  absl::Mutex mu_;
  absl::CondVar cv_;
  std::optional<Batch> inflight_ ABSL_GUARDED_BY(mu_);
  std::deque<CommitResult> results_ ABSL_GUARDED_BY(mu_);
  bool abandon_ ABSL_GUARDED_BY(mu_) = false;  // give up the in-flight batch
  bool quit_ ABSL_GUARDED_BY(mu_) = false;
  std::string wait_reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tusk::ingest
