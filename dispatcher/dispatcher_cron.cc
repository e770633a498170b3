// Time-driven inputs, on one thread: cron inputs' ticks, and branch
// triggers (input.pfs.trigger) that move a branch to the head of the one it
// follows once enough has come.
//
// A tick is an automatic commit to the cron input's repo whose metadata
// names its time (kCronTickKey) and which expects its parent to name the
// previous tick: two tuskd threads or a restart racing cannot commit the
// same tick twice (the loser is Aborted and drops its commit), and after a
// pause only the latest missed tick is made.

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/flag_values.h"
#include "common/log.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "dispatcher/cron.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/dispatcher_internal.h"
#include "dispatcher/spec.h"
#include "pfs/refs.h"

namespace tusk::dispatcher {
namespace {

// In the carried metadata space, so that a user's commit to the cron repo in
// between keeps it.
constexpr char kCronTickKey[] = "state/cron/tick";

std::string TickName(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace

absl::Status Dispatcher::Tick(const PipelineInfo& info, const pps::v1::CronInput& cron,
                              absl::Time now) {
  ASSIGN_OR_RETURN(CronSchedule schedule, CronSchedule::Parse(cron.spec()));
  std::string last;
  auto head = pfs_->InspectCommit(cron.repo(), pfs::kDefaultBranch);
  if (head.ok()) {
    auto it = head->metadata().find(kCronTickKey);
    if (it != head->metadata().end()) last = it->second;
  } else if (head.status().code() != absl::StatusCode::kNotFound) {
    return head.status();
  }
  // Whole seconds: a tick is named by its time to the second.
  const absl::Time start = absl::FromUnixSeconds(absl::ToUnixSeconds(
      cron.has_start() ? FromTimestamp(cron.start()) : FromTimestamp(info.created())));
  absl::Time after = start - absl::Seconds(1);  // the first tick may be at start
  if (!last.empty()) {
    std::string err;
    if (!absl::ParseTime("%Y-%m-%dT%H:%M:%SZ", last, absl::UTCTimeZone(), &after, &err)) {
      return absl::DataLossError(absl::StrCat("cron repo ", cron.repo(), ": the last tick '", last,
                                              "' is not a time: ", err));
    }
  }
  const absl::Time tick = schedule.Latest(after, now, start);
  if (tick == absl::InfinitePast()) return absl::OkStatus();
  const std::string name = TickName(tick);
  if (name == last) return absl::OkStatus();
  pfs::AutoCommitOptions o;
  o.message = absl::StrCat("cron tick ", name, " of pipeline ", info.spec().pipeline().name());
  o.metadata[kCronTickKey] = name;
  o.expect_metadata[kCronTickKey] = last;
  ASSIGN_OR_RETURN(auto up, pfs_->BeginUpload(cron.repo(), pfs::kDefaultBranch, o));
  if (cron.overwrite() && !last.empty()) {
    absl::Status gone = up->Delete("/" + last);
    if (!gone.ok() && gone.code() != absl::StatusCode::kNotFound) return gone;
  }
  const std::string content = name + "\n";
  RETURN_IF_ERROR(up->BeginFile("/" + name, false));
  RETURN_IF_ERROR(up->Write(content));
  RETURN_IF_ERROR(up->EndFile(content.size()));
  auto c = up->Close();
  if (c.status().code() == absl::StatusCode::kAborted) return absl::OkStatus();  // ticked already
  RETURN_IF_ERROR(c.status());
  VLOG(1) << "pipeline " << info.spec().pipeline().name() << ": cron tick " << name << " in "
          << cron.repo() << "@" << c->id();
  return absl::OkStatus();
}

absl::Status Dispatcher::FollowTrigger(const PFSInput& in, absl::Time now, TriggerState* ts) {
  const pps::v1::Trigger& t = in.trigger();
  auto src = pfs_->InspectBranch(in.repo(), t.branch());
  if (src.status().code() == absl::StatusCode::kNotFound) return absl::OkStatus();
  RETURN_IF_ERROR(src.status());
  const std::string head = src->head();
  std::string cur;
  auto dst = pfs_->InspectBranch(in.repo(), in.branch());
  if (dst.ok()) {
    cur = dst->head();
  } else if (dst.status().code() != absl::StatusCode::kNotFound) {
    return dst.status();
  }
  if (ts->last_move == absl::InfinitePast()) ts->last_move = now;  // cron counts from here
  if (head.empty() || head == cur) return absl::OkStatus();
  std::vector<bool> met;
  if (t.commits() > 0) {
    int64_t n = 0;  // commits on the followed branch since the last move, up to enough
    absl::Status walk = pfs_->ListCommit(in.repo(), head, t.commits() + 1,
                                         [&](const pfs::CommitInfo& c) -> absl::Status {
                                           if (c.id() == cur) return absl::CancelledError("");
                                           n++;
                                           return absl::OkStatus();
                                         });
    if (!walk.ok() && walk.code() != absl::StatusCode::kCancelled) return walk;
    met.push_back(n >= t.commits());
  }
  if (!t.size().empty()) {
    ASSIGN_OR_RETURN(uint64_t want, ParseMemoryQuantity(t.size()));
    uint64_t added = 0;
    if (cur.empty()) {
      ASSIGN_OR_RETURN(pfs::CommitInfo c, pfs_->InspectCommit(in.repo(), head));
      added = c.size_bytes();
    } else {
      RETURN_IF_ERROR(pfs_->DiffCommit(in.repo(), head, cur, [&](const pfs::FileDiff& d) {
        if (d.change() != pfs::FileDiff::DELETED) added += d.new_size();
        return absl::OkStatus();
      }));
    }
    met.push_back(added >= want);
  }
  if (!t.cron_spec().empty()) {
    ASSIGN_OR_RETURN(CronSchedule schedule, CronSchedule::Parse(t.cron_spec()));
    met.push_back(schedule.Next(ts->last_move) <= now);
  }
  const bool move = t.all() ? std::all_of(met.begin(), met.end(), [](bool b) { return b; })
                            : std::any_of(met.begin(), met.end(), [](bool b) { return b; });
  if (!move) return absl::OkStatus();
  RETURN_IF_ERROR(pfs_->CreateBranch(in.repo(), in.branch(), head).status());
  ts->last_move = now;
  LOG(INFO) << "trigger: " << in.repo() << "@" << in.branch() << " moved to " << head
            << " (head of " << t.branch() << ")";
  // A branch move finishes no commit, so the commit hook sees nothing: the
  // jobs of the pipelines that read the branch are made here, in the commit
  // set of the commit it moved to.
  ASSIGN_OR_RETURN(pfs::CommitInfo c, pfs_->InspectCommit(in.repo(), head));
  pfs::v1::CommitRef trigger;
  trigger.set_repo(in.repo());
  trigger.set_id(head);
  trigger.set_branch(in.branch());
  pfs::KvBatch batch;
  std::set<std::string> wake;
  {
    absl::MutexLock l(&triggers_mu_);
    ASSIGN_OR_RETURN(wake, TriggerJobs(trigger, c.commit_set(), &batch));
    RETURN_IF_ERROR(store_.Write(&batch, /*sync=*/true));
  }
  Changed();
  absl::MutexLock l(&mu_);
  for (const auto& p : wake) Wake(p);
  return absl::OkStatus();
}

void Dispatcher::CronLoop() {
  std::map<std::string, std::string> errors;  // by repo: the last error logged
  while (true) {
    std::vector<PipelineInfo> infos;
    {
      absl::MutexLock l(&mu_);
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closing_; };
      mu_.AwaitWithTimeout(absl::Condition(&stop), absl::Milliseconds(500));
      if (closing_) return;
      for (const auto& [name, d] : drivers_) {
        if (d->info.state() != pps::v1::PAUSED) infos.push_back(d->info);
      }
    }
    const absl::Time now = absl::Now();
    std::set<std::pair<std::string, std::string>> followed;
    for (const auto& info : infos) {
      for (const PFSInput* in : PfsInputs(info.spec().input())) {
        if (!in->has_trigger() || !followed.insert({in->repo(), in->branch()}).second) continue;
        const std::string key = absl::StrCat(in->repo(), "@", in->branch());
        absl::Status st = FollowTrigger(*in, now, &trigger_state_[key]);
        std::string& logged = errors[key];
        if (!st.ok() && logged != st.ToString()) {
          LOG(WARNING) << "trigger of " << key << ": " << st;
        }
        logged = st.ok() ? "" : st.ToString();
      }
    }
    for (const auto& info : infos) {
      for (const auto* cron : CronInputs(info.spec().input())) {
        absl::Status st = Tick(info, *cron, now);
        std::string& logged = errors[cron->repo()];
        if (!st.ok() && logged != st.ToString()) {
          LOG(WARNING) << "pipeline " << info.spec().pipeline().name() << ": cron input "
                       << cron->name() << ": " << st;
        }
        logged = st.ok() ? "" : st.ToString();
      }
    }
  }
}

}  // namespace tusk::dispatcher
