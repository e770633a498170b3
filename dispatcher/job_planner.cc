#include "dispatcher/job_planner.h"

#include <optional>
#include <set>
#include <vector>

#include "common/status.h"

namespace tusk::dispatcher {
namespace {

absl::StatusOr<Hash> ParseRoot(const std::string& hex) {
  if (hex.empty()) return Hash{};
  return Hash::FromHex(hex);
}

class Planner {
 public:
  Planner(const JobStore& store, const std::string& pipeline, const std::string& job, uint64_t salt,
          JobPlan* plan)
      : store_(store), pipeline_(pipeline), job_(job), salt_(salt), plan_(plan) {}

  // A datum of the inputs, with its current record if it has one.
  absl::Status Touch(const Datum& datum, const std::optional<DatumInfo>& cur);
  // A current datum that is no longer in the inputs.
  void Remove(const DatumInfo& cur);
  uint64_t added() const { return added_; }

 private:
  const JobStore& store_;
  const std::string& pipeline_;
  const std::string& job_;
  const uint64_t salt_;
  JobPlan* plan_;
  uint64_t added_ = 0;
};

absl::Status Planner::Touch(const Datum& datum, const std::optional<DatumInfo>& cur) {
  Hash h = DatumHash(salt_, datum);
  bool cur_ok = cur && cur->state() == pps::v1::DATUM_SUCCESS;
  if (cur_ok && cur->id() == h.Hex()) return absl::OkStatus();  // unchanged
  plan_->old_roots[datum.key] = cur_ok ? cur->output_root() : "";
  if (!cur) added_++;
  DatumInfo di;
  di.set_id(h.Hex());
  di.set_job(job_);
  di.set_pipeline(pipeline_);
  di.set_key(datum.key);
  for (const auto& in : datum.inputs) *di.add_inputs() = in;
  ASSIGN_OR_RETURN(auto prior, store_.GetJobDatum(job_, datum.key));
  if (prior &&
      (prior->state() == pps::v1::DATUM_SUCCESS || prior->state() == pps::v1::DATUM_FAILED ||
       prior->state() == pps::v1::DATUM_SKIPPED || prior->state() == pps::v1::DATUM_RECOVERED)) {
    di = *prior;  // resumed: this datum was done before the restart
  } else {
    ASSIGN_OR_RETURN(auto done, store_.GetDone(pipeline_, h));
    if (done) {
      di.set_state(pps::v1::DATUM_SKIPPED);
      di.set_output_root(done->output_root());
      di.set_output_files(done->output_files());
      di.set_output_bytes(done->output_bytes());
    } else {
      di.set_state(pps::v1::DATUM_PENDING);
      if (prior) di.set_attempts(prior->attempts());
    }
  }
  plan_->touched[datum.key] = di;
  return absl::OkStatus();
}

void Planner::Remove(const DatumInfo& cur) {
  DatumInfo di = cur;
  di.set_job(job_);
  di.set_state(pps::v1::DATUM_REMOVED);
  di.clear_error();
  plan_->touched[cur.key()] = di;
  plan_->old_roots[cur.key()] = cur.state() == pps::v1::DATUM_SUCCESS ? cur.output_root() : "";
  plan_->removed++;
}

}  // namespace

absl::StatusOr<JobPlan> PlanJob(pfs::NodeStore* nodes, const JobStore& store,
                                const std::string& pipeline, const pps::v1::PipelineSpec& spec,
                                const std::string& job, const ResolvedInputs& inputs,
                                const PipelineRuntime& rt) {
  JobPlan plan;
  Planner planner(store, pipeline, job, rt.salt(), &plan);
  plan.incremental = spec.input().has_pfs() && rt.has_base() &&
                     rt.input_spec() == spec.input().SerializeAsString();
  if (plan.incremental) {
    const PFSInput& in = spec.input().pfs();
    auto base = rt.base_roots().find(in.name());
    ASSIGN_OR_RETURN(Hash old_root,
                     ParseRoot(base == rt.base_roots().end() ? std::string() : base->second));
    auto now = inputs.find(in.name());
    if (now == inputs.end()) {
      return absl::InternalError(absl::StrCat("input ", in.name(), " was not resolved"));
    }
    ASSIGN_OR_RETURN(std::set<std::string> keys,
                     ChangedDatumKeys(nodes, in, old_root, now->second.root));
    // Datums that failed last time run again.
    ASSIGN_OR_RETURN(std::set<std::string> failed, store.FailedKeys(pipeline));
    keys.insert(failed.begin(), failed.end());
    for (const auto& key : keys) {
      ASSIGN_OR_RETURN(auto datum, LookupDatum(nodes, in, now->second, key));
      ASSIGN_OR_RETURN(auto cur, store.GetCurrent(pipeline, key));
      if (!datum) {
        if (cur) planner.Remove(*cur);
        continue;
      }
      RETURN_IF_ERROR(planner.Touch(*datum, cur));
    }
    plan.total = rt.total() + planner.added() - plan.removed;
    return plan;
  }
  ASSIGN_OR_RETURN(std::vector<Datum> all, ListDatums(nodes, spec.input(), inputs));
  ASSIGN_OR_RETURN(auto current, store.AllCurrent(pipeline));
  for (const Datum& datum : all) {
    auto it = current.find(datum.key);
    std::optional<DatumInfo> cur;
    if (it != current.end()) {
      cur = std::move(it->second);
      current.erase(it);
    }
    RETURN_IF_ERROR(planner.Touch(datum, cur));
  }
  for (const auto& [key, cur] : current) planner.Remove(cur);
  plan.total = all.size();
  return plan;
}

}  // namespace tusk::dispatcher
