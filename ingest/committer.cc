#include "ingest/committer.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/backoff.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "ingest/format.h"

namespace tusk::ingest {

namespace iv1 = ::tusk::ingest::v1;
namespace pv1 = ::tusk::pfs::v1;

Committer::~Committer() {
  {
    absl::MutexLock l(&mu_);
    quit_ = true;
    abandon_ = true;
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

void Committer::Start() {
  thread_ = std::thread([this] { Loop(); });
}

absl::StatusOr<std::map<std::string, std::string>> Committer::ReadHead(
    const std::atomic<bool> &stop) {
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    pv1::InspectCommitRequest req;
    req.set_repo(spec_.repo());
    req.set_ref(spec_.branch());
    pv1::CommitInfo info;
    absl::Status s = FromGrpcStatus(api_->InspectCommit(&ctx, req, &info));
    if (s.ok())
      return std::map<std::string, std::string>(info.metadata().begin(), info.metadata().end());
    if (s.code() == absl::StatusCode::kNotFound) return std::map<std::string, std::string>();
    if (stop.load()) return absl::CancelledError("stopping");
    absl::Duration d = RetryBackoff(attempt, absl::Milliseconds(100), opts_.max_backoff);
    LOG(WARNING) << "cannot read the head of " << spec_.repo() << "@" << spec_.branch() << ": " << s
                 << "; retrying in " << d;
    absl::SleepFor(d);
  }
}

absl::StatusOr<std::string> Committer::CommitOnce(Batch &b) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  pv1::PutFileResponse resp;
  auto w = api_->PutFile(&ctx, &resp);
  pv1::PutFileRequest req;
  req.set_repo(spec_.repo());
  req.set_ref(spec_.branch());
  req.set_origin(pv1::INGEST);
  auto &meta = *req.mutable_metadata();
  auto &expect = *req.mutable_expect_metadata();
  std::vector<std::string> ranges;
  for (const auto &[tp, p] : b.parts) {
    meta[KafkaOffsetKey(tp.first, tp.second)] = absl::StrCat(p.next);
    expect[KafkaOffsetKey(tp.first, tp.second)] = p.expect ? absl::StrCat(*p.expect) : "";
    if (p.records > 0) {
      meta[KafkaRangeKey(tp.first, tp.second)] = absl::StrCat(p.first, "-", p.last);
      ranges.push_back(absl::StrCat(Name(tp), "@", p.first, "-", p.last));
    }
    if (!p.gap.empty()) {
      meta[KafkaGapKey(tp.first, tp.second)] = p.gap;
      meta[KafkaLastGapKey(tp.first, tp.second)] = p.gap;
    }
    if (p.lost_changed) meta[KafkaLostKey(tp.first, tp.second)] = absl::StrCat(p.lost_total);
  }
  meta["ingest/source"] = spec_.name();
  meta["ingest/member"] = opts_.member_id;
  meta["ingest/records"] = absl::StrCat(b.records);
  if (b.dead_letters) meta["ingest/dead_letters"] = absl::StrCat(b.dead_letters);
  req.set_message(absl::StrCat("ingest ", spec_.name(), ": ", b.records, " records (",
                               absl::StrJoin(ranges, ", "), ")"));
  bool first = true;
  bool ok = true;
  for (auto &[key, f] : b.files) {
    std::string path;
    if (f.dead) {
      path = DeadLetterPath(f.topic, f.partition, f.first, f.last);
    } else if (spec_.layout() == iv1::HOUR) {
      path = HourFilePath(f.topic, f.hour, f.partition, f.first, f.last);
    } else {
      path = PartitionFilePath(f.topic, f.partition, f.first, f.last);
    }
    constexpr size_t kMessage = 4 << 20;
    size_t off = 0;
    do {
      if (!first) {
        req.Clear();
      }
      first = false;
      if (off == 0) req.set_path(path);
      size_t n = std::min(kMessage, f.data.size() - off);
      req.set_data(f.data.data() + off, n);
      off += n;
      if (off == f.data.size()) {
        req.set_eof(true);
        req.set_size(f.data.size());
      }
      if (!w->Write(req)) {
        ok = false;
        break;
      }
    } while (off < f.data.size());
    if (!ok) break;
  }
  if (ok) {
    if (!first) req.Clear();
    req.set_close(true);
    ok = w->Write(req);
  }
  if (ok) w->WritesDone();
  absl::Status s = FromGrpcStatus(w->Finish());
  if (!s.ok()) return s;
  return resp.commit().id();
}

void Committer::Loop() {
  for (;;) {
    Batch b;
    {
      absl::MutexLock l(&mu_);
      while (!quit_ && !inflight_.has_value()) cv_.Wait(&mu_);
      if (quit_) return;
      b = std::move(*inflight_);
      abandon_ = false;
    }
    CommitResult r;
    r.records = b.records;
    r.bytes = b.bytes;
    r.opened = b.opened;
    for (int attempt = 0;; ++attempt) {
      auto id = CommitOnce(b);
      if (id.ok()) {
        r.outcome = Outcome::kCommitted;
        r.commit = *id;
        r.committed = absl::Now();
        for (const auto &[tp, p] : b.parts) r.next[tp] = p.next;
        if (attempt > 0) LOG(INFO) << "tuskd accepts commits again";
        break;
      }
      if (id.status().code() == absl::StatusCode::kAborted) {
        r.outcome = Outcome::kAborted;
        r.status = id.status();
        break;
      }
      absl::Duration d = RetryBackoff(attempt, absl::Milliseconds(100), opts_.max_backoff);
      std::string why = absl::StrCat("waiting for tuskd: ", id.status().message());
      LOG(WARNING) << "cannot commit " << b.records << " records (" << b.bytes << " bytes) to "
                   << spec_.repo() << "@" << spec_.branch() << ": " << id.status()
                   << "; fetching is paused, retrying in " << d;
      absl::MutexLock l(&mu_);
      wait_reason_ = why;
      absl::Time until = absl::Now() + d;
      while (!quit_ && !abandon_ && !cv_.WaitWithDeadline(&mu_, until)) {
      }
      if (quit_ || abandon_) {
        r.outcome = Outcome::kAbandoned;
        r.status = id.status();
        break;
      }
    }
    absl::MutexLock l(&mu_);
    wait_reason_.clear();
    inflight_.reset();
    results_.push_back(std::move(r));
    cv_.SignalAll();
  }
}

bool Committer::Idle() {
  absl::MutexLock l(&mu_);
  return !inflight_.has_value();
}

void Committer::Submit(Batch batch) {
  absl::MutexLock l(&mu_);
  inflight_ = std::move(batch);
  cv_.SignalAll();
}

bool Committer::WaitIdle(absl::Duration limit, bool give_up) {
  absl::MutexLock l(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !inflight_.has_value(); };
  if (mu_.AwaitWithTimeout(absl::Condition(&idle), limit)) return true;
  if (!give_up) return false;
  LOG(WARNING) << "giving up the in-flight commit of " << inflight_->records
               << " records; whoever owns the partitions next reads them again";
  abandon_ = true;
  cv_.SignalAll();
  mu_.Await(absl::Condition(&idle));
  return false;
}

std::deque<CommitResult> Committer::TakeResults() {
  absl::MutexLock l(&mu_);
  std::deque<CommitResult> done;
  done.swap(results_);
  return done;
}

std::string Committer::WaitReason() {
  absl::MutexLock l(&mu_);
  return wait_reason_;
}

}  // namespace tusk::ingest
