// Which commits a job reads: commit sets, as Pachyderm 2.x has them.
//
// A commit set is an input commit and everything computed from it. A job of
// pipeline P in commit set S reads, for each of its input branches:
// - the trigger commit for the trigger's branch;
// - the branch's commit in S, once it is finished, if it has one;
// - nothing yet, if a branch upstream of it has a commit in S (the commit
//   this branch will get in S is still being computed: the job waits, so that
//   a diamond images -> edges -> montage pairs each images commit with the
//   edges computed from it, once);
// - otherwise the branch's head.
// A job with a failed input commit never runs (JOB_UNRUNNABLE): its output
// commit is finished failed with its parent's files, which blocks what is
// downstream of it in turn.

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/dispatcher_internal.h"
#include "dispatcher/spec.h"

namespace tusk::dispatcher {
namespace {

using BranchId = std::pair<std::string, std::string>;  // (repo, branch)

// Why a job with failed input commit `c` cannot run.
std::string BlockedReason(const pfs::CommitInfo& c) {
  if (c.origin() == pfs::v1::PIPELINE) {
    // A pipeline's output commit has its job's id.
    return absl::StrCat("upstream job ", c.id(), " of pipeline ", c.repo(), " failed: ", c.error());
  }
  return absl::StrCat("input commit ", c.repo(), "@", c.id(), " failed: ", c.error());
}

}  // namespace

absl::StatusOr<std::set<std::string>> Dispatcher::TriggerJobs(const pfs::v1::CommitRef& trigger,
                                                              const std::string& commit_set,
                                                              pfs::KvBatch* batch) {
  auto it = triggers_.find({trigger.repo(), trigger.branch()});
  if (it == triggers_.end()) return std::set<std::string>();
  // One job per pipeline per commit set: a job that an earlier commit of the
  // set created reads this commit too (it waits for it).
  std::set<std::string> open;
  ASSIGN_OR_RETURN(std::vector<std::string> ids, store_.CommitSetJobs(commit_set));
  for (const auto& id : ids) {
    ASSIGN_OR_RETURN(auto j, store_.FindJob("", id));
    if (j && !Terminal(j->state())) open.insert(j->pipeline());
  }
  for (const auto& p : it->second) {
    if (!open.count(p)) NewJob(p, trigger, commit_set, batch);
  }
  return it->second;
}

absl::StatusOr<Dispatcher::Resolution> Dispatcher::ResolveInputs(JobInfo* job, ActiveJob* a) {
  // What each branch holds in the job's commit set (the newest commit if a
  // branch has several, as after a re-run in the same set).
  std::map<BranchId, pfs::CommitInfo> in_set;
  RETURN_IF_ERROR(pfs_->ListCommitSet(job->commit_set(), [&](const pfs::CommitInfo& c) {
    pfs::CommitInfo& slot = in_set[{c.repo(), c.branch()}];
    if (slot.id().empty() || FromTimestamp(c.started()) > FromTimestamp(slot.started())) slot = c;
    return absl::OkStatus();
  }));
  // Each pipeline's output branch and the branches it reads.
  ASSIGN_OR_RETURN(std::vector<PipelineInfo> all, pipelines_->List());
  std::map<BranchId, std::vector<BranchId>> reads;
  for (const auto& p : all) {
    auto& r = reads[{p.spec().pipeline().name(), p.spec().output_branch()}];
    for (const PFSInput* in : PfsInputs(p.spec().input())) r.emplace_back(in->repo(), in->branch());
  }
  // Whether a branch upstream of `b` has a commit in the set.
  auto fed_by_set = [&](const BranchId& b) {
    std::set<BranchId> seen;
    std::vector<BranchId> todo = {b};
    while (!todo.empty()) {
      BranchId cur = todo.back();
      todo.pop_back();
      auto it = reads.find(cur);
      if (it == reads.end()) continue;
      for (const auto& up : it->second) {
        if (!seen.insert(up).second) continue;
        if (in_set.count(up)) return true;
        todo.push_back(up);
      }
    }
    return false;
  };

  Resolution res;
  job->clear_inputs();
  for (const PFSInput* in : PfsInputs(a->spec.input())) {
    if (a->inputs.count(in->name())) continue;  // a union may name an input twice
    const BranchId b(in->repo(), in->branch());
    pfs::v1::CommitRef ref;
    ref.set_repo(in->repo());
    ref.set_branch(in->branch());
    std::string id;
    auto set_commit = in_set.find(b);
    if (!in->commit().empty()) {
      id = in->commit();  // pinned
    } else if (job->trigger().repo() == in->repo() && job->trigger().branch() == in->branch()) {
      id = job->trigger().id();
    } else if (set_commit != in_set.end()) {
      if (set_commit->second.state() != pfs::v1::FINISHED) {
        res.waiting = absl::StrCat("waiting for ", in->repo(), "@", set_commit->second.id(),
                                   " (commit set ", job->commit_set(), ") to finish");
        return res;
      }
      id = set_commit->second.id();
    } else if (fed_by_set(b)) {
      res.waiting = absl::StrCat("waiting for ", in->repo(), "@", in->branch(),
                                 "'s commit in commit set ", job->commit_set());
      return res;
    } else {
      auto br = pfs_->InspectBranch(in->repo(), in->branch());
      if (br.ok()) {
        id = br->head();
      } else if (br.status().code() != absl::StatusCode::kNotFound) {
        return br.status();
      }
    }
    ResolvedInput r;
    if (!id.empty()) {
      ASSIGN_OR_RETURN(pfs::CommitInfo c, pfs_->InspectCommit(in->repo(), id));
      if (!c.error().empty() && res.blocked.empty()) res.blocked = BlockedReason(c);
      if (!c.root().empty()) {
        ASSIGN_OR_RETURN(r.root, Hash::FromHex(c.root()));
      }
      r.commit = id;
      ref.set_id(id);
      res.provenance.push_back(ref);
    }
    a->inputs[in->name()] = r;
    *job->add_inputs() = ref;
  }
  return res;
}

}  // namespace tusk::dispatcher
