#include "dispatcher/pipelines.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "dispatcher/spec.h"
#include "google/protobuf/util/time_util.h"
#include "pfs/keys.h"

namespace tusk::dispatcher {
absl::StatusOr<std::optional<PipelineInfo>> Pipelines::Get(const std::string& name) {
  ASSIGN_OR_RETURN(auto v, space_.Get(pfs::PipelineKey(name)));
  if (!v) return std::optional<PipelineInfo>();
  PipelineInfo info;
  if (!info.ParseFromString(*v))
    return absl::DataLossError(absl::StrCat("pipeline record ", name, " is corrupt"));
  return std::optional<PipelineInfo>(std::move(info));
}

absl::Status Pipelines::Put(const PipelineInfo& info) {
  // Logged to the object store too: a pipeline survives an index rebuild.
  return space_.PutRecord(pfs::PipelineKey(info.spec().pipeline().name()),
                          info.SerializeAsString());
}

absl::Status Pipelines::CheckNoCycle(const PipelineSpec& spec) {
  const std::string& self = spec.pipeline().name();
  // Depth-first from each input repo through the pipelines that produce it.
  std::vector<std::string> path;
  std::set<std::string> done;
  std::function<absl::Status(const std::string&)> visit =
      [&](const std::string& repo) -> absl::Status {
    if (repo == self) {
      return absl::InvalidArgumentError(absl::StrCat("pipeline ", self,
                                                     " would close a cycle: ", self, " <- ",
                                                     absl::StrJoin(path, " <- "), " <- ", self));
    }
    if (!done.insert(repo).second) return absl::OkStatus();
    ASSIGN_OR_RETURN(auto p, Get(repo));
    if (!p) return absl::OkStatus();  // a plain repo: no inputs
    path.push_back(repo);
    for (const PFSInput* in : PfsInputs(p->spec().input())) RETURN_IF_ERROR(visit(in->repo()));
    path.pop_back();
    return absl::OkStatus();
  };
  for (const PFSInput* in : PfsInputs(spec.input())) {
    path.clear();
    RETURN_IF_ERROR(visit(in->repo()));
  }
  return absl::OkStatus();
}

absl::StatusOr<PipelineInfo> Pipelines::Create(PipelineSpec spec, bool update) {
  RETURN_IF_ERROR(NormalizePipelineSpec(&spec));
  const std::string name = spec.pipeline().name();
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto existing, Get(name));
  if (existing && !update) {
    return absl::AlreadyExistsError(
        absl::StrCat("pipeline ", name, " exists; use update pipeline"));
  }
  if (!existing && update)
    return absl::NotFoundError(absl::StrCat("pipeline ", name, " not found"));
  for (const PFSInput* in : PfsInputs(spec.input())) {
    auto repo = pfs_->InspectRepo(in->repo());
    if (repo.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(
          absl::StrCat("input repo ", in->repo(), " of pipeline ", name, " not found"));
    }
    RETURN_IF_ERROR(repo.status());
    if (!in->commit().empty()) {
      auto c = pfs_->InspectCommit(in->repo(), in->commit());
      if (c.status().code() == absl::StatusCode::kNotFound) {
        return absl::NotFoundError(absl::StrCat("input commit ", in->repo(), "@", in->commit(),
                                                " of pipeline ", name, " not found"));
      }
      RETURN_IF_ERROR(c.status());
      if (c->branch() != in->branch()) {
        return absl::InvalidArgumentError(absl::StrCat("input.pfs.commit: ", in->repo(), "@",
                                                       in->commit(), " is on branch ", c->branch(),
                                                       ", not ", in->branch()));
      }
    }
  }
  RETURN_IF_ERROR(CheckNoCycle(spec));
  if (!existing) {
    auto repo = pfs_->CreateRepo(name, absl::StrCat("output of pipeline ", name));
    if (repo.status().code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(absl::StrCat("repo ", name,
                                                   " exists and is not a pipeline's output; ",
                                                   "a pipeline writes to a repo of its own name"));
    }
    RETURN_IF_ERROR(repo.status());
  }
  PipelineInfo info;
  if (existing) info = *existing;
  *info.mutable_spec() = std::move(spec);
  info.set_version(existing ? existing->version() + 1 : 1);
  if (!existing) {
    info.set_state(pps::v1::RUNNING);
    *info.mutable_created() = NowTimestamp();
  }
  *info.mutable_updated() = NowTimestamp();
  RETURN_IF_ERROR(Put(info));
  LOG(INFO) << (existing ? "updated" : "created") << " pipeline " << name << " (version "
            << info.version() << ")";
  return info;
}

absl::StatusOr<PipelineInfo> Pipelines::Inspect(const std::string& name) {
  ASSIGN_OR_RETURN(auto p, Get(name));
  if (!p) return absl::NotFoundError(absl::StrCat("pipeline ", name, " not found"));
  return *p;
}

absl::StatusOr<std::vector<PipelineInfo>> Pipelines::List() {
  std::vector<PipelineInfo> out;
  absl::Status status;
  RETURN_IF_ERROR(space_.ScanPrefix(pfs::kPipelineSpace, [&](absl::string_view k,
                                                             absl::string_view v) {
    PipelineInfo info;
    if (!info.ParseFromString(std::string(v))) {
      status = absl::DataLossError(absl::StrCat("pipeline record ", k.substr(1), " is corrupt"));
      return false;
    }
    out.push_back(std::move(info));
    return true;
  }));
  RETURN_IF_ERROR(status);
  return out;
}

absl::Status Pipelines::Delete(const std::string& name, bool keep_repo) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto p, Get(name));
  if (!p) return absl::NotFoundError(absl::StrCat("pipeline ", name, " not found"));
  ASSIGN_OR_RETURN(auto all, List());
  for (const auto& other : all) {
    for (const PFSInput* in : PfsInputs(other.spec().input())) {
      if (in->repo() == name) {
        return absl::FailedPreconditionError(
            absl::StrCat("pipeline ", other.spec().pipeline().name(), " reads the output of ", name,
                         "; delete it first"));
      }
    }
  }
  RETURN_IF_ERROR(space_.DeleteRecord(pfs::PipelineKey(name)));
  if (!keep_repo) {
    absl::Status st = pfs_->DeleteRepo(name, /*force=*/true);
    if (!st.ok() && st.code() != absl::StatusCode::kNotFound) return st;
  }
  LOG(INFO) << "deleted pipeline " << name << (keep_repo ? " (kept its repo)" : "");
  return absl::OkStatus();
}

absl::StatusOr<PipelineInfo> Pipelines::SetState(const std::string& name,
                                                 pps::v1::PipelineState state) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto p, Get(name));
  if (!p) return absl::NotFoundError(absl::StrCat("pipeline ", name, " not found"));
  p->set_state(state);
  *p->mutable_updated() = NowTimestamp();
  RETURN_IF_ERROR(Put(*p));
  return *p;
}

}  // namespace tusk::dispatcher
