// Index records of repos, branches and commits; repos and branches.

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "pfs/keys.h"
#include "pfs/pfs_impl.h"
#include "pfs/records.h"
#include "pfs/refs.h"

namespace tusk::pfs {

using google::protobuf::util::TimeUtil;
using storage::v1::StagedOp;

absl::StatusOr<std::optional<RepoInfo>> PfsImpl::GetRepo(const std::string& name) {
  ASSIGN_OR_RETURN(auto v, kv_->Get(RepoKey(name)));
  if (!v) return std::optional<RepoInfo>();
  ASSIGN_OR_RETURN(auto r, Parse<RepoInfo>(*v, absl::StrCat("repo ", name)));
  return std::optional<RepoInfo>(std::move(r));
}

absl::StatusOr<std::optional<BranchInfo>> PfsImpl::GetBranch(const std::string& repo,
                                                             const std::string& branch) {
  ASSIGN_OR_RETURN(auto v, kv_->Get(BranchKey(repo, branch)));
  if (!v) return std::optional<BranchInfo>();
  ASSIGN_OR_RETURN(auto b, Parse<BranchInfo>(*v, absl::StrCat("branch ", repo, "@", branch)));
  return std::optional<BranchInfo>(std::move(b));
}

absl::StatusOr<std::optional<CommitInfo>> PfsImpl::GetCommit(const std::string& repo,
                                                             const std::string& id) {
  ASSIGN_OR_RETURN(auto v, kv_->Get(CommitKey(repo, id)));
  if (!v) return std::optional<CommitInfo>();
  ASSIGN_OR_RETURN(auto c, Parse<CommitInfo>(*v, absl::StrCat("commit ", repo, "@", id)));
  return std::optional<CommitInfo>(std::move(c));
}

absl::StatusOr<CommitInfo> PfsImpl::ResolveCommit(const std::string& repo, const std::string& ref) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  ASSIGN_OR_RETURN(auto r, GetRepo(repo));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
  ASSIGN_OR_RETURN(ParsedRef parsed, ParseRef(ref.empty() ? std::string(kDefaultBranch) : ref));
  std::string id;
  if (parsed.is_commit_id) {
    id = parsed.base;
  } else {
    ASSIGN_OR_RETURN(auto b, GetBranch(repo, parsed.base));
    if (!b)
      return absl::NotFoundError(absl::StrCat("branch ", repo, "@", parsed.base, " not found"));
    if (b->head().empty()) {
      return absl::NotFoundError(
          absl::StrCat("branch ", repo, "@", parsed.base, " has no finished commit yet"));
    }
    id = b->head();
  }
  ASSIGN_OR_RETURN(auto c, GetCommit(repo, id));
  if (!c) return absl::NotFoundError(absl::StrCat("commit ", id, " not found in repo ", repo));
  for (int i = 0; i < parsed.ancestors; ++i) {
    if (c->parent().empty()) {
      return absl::NotFoundError(absl::StrCat("ref ", repo, "@", ref, ": commit ", c->id(),
                                              " has no parent (history has only ", i + 1,
                                              " commits)"));
    }
    std::string parent = c->parent();
    ASSIGN_OR_RETURN(c, GetCommit(repo, parent));
    if (!c)
      return absl::DataLossError(
          absl::StrCat("parent commit ", parent, " of ", repo, " is missing"));
  }
  return *c;
}

absl::StatusOr<CommitInfo> PfsImpl::ResolveForRead(const std::string& repo,
                                                   const std::string& ref) {
  ASSIGN_OR_RETURN(CommitInfo c, ResolveCommit(repo, ref));
  if (c.state() != v1::FINISHED) {
    return absl::FailedPreconditionError(
        absl::StrCat("commit ", repo, "@", c.id(), " is still open; finish it to read its files"));
  }
  return c;
}

absl::StatusOr<RepoInfo> PfsImpl::CreateRepo(const std::string& name,
                                             const std::string& description) {
  RETURN_IF_ERROR(ValidateRepoName(name));
  absl::MutexLock lock(&meta_mu_);
  ASSIGN_OR_RETURN(auto existing, GetRepo(name));
  if (existing) return absl::AlreadyExistsError(absl::StrCat("repo ", name, " already exists"));
  RepoInfo info;
  info.set_name(name);
  info.set_description(description);
  *info.mutable_created() = NowTimestamp();
  BranchInfo master;
  master.set_repo(name);
  master.set_name(kDefaultBranch);
  *master.mutable_created() = info.created();
  KvBatch batch;
  batch.Put(RepoKey(name), info.SerializeAsString());
  batch.Put(BranchKey(name, kDefaultBranch), master.SerializeAsString());
  RETURN_IF_ERROR(WriteLogged({RepoEvent(info), BranchEvent(master)}, &batch));
  LOG(INFO) << "created repo " << name;
  info.add_branches(kDefaultBranch);
  return info;
}

absl::StatusOr<RepoInfo> PfsImpl::InspectRepo(const std::string& name) {
  RETURN_IF_ERROR(ValidateRepoName(name));
  ASSIGN_OR_RETURN(auto r, GetRepo(name));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", name, " not found"));
  RepoInfo info = *r;
  RETURN_IF_ERROR(kv_->ScanPrefix(BranchPrefix(name), [&](absl::string_view, absl::string_view v) {
    BranchInfo b;
    if (b.ParseFromString(std::string(v))) {
      info.add_branches(b.name());
      if (b.name() == kDefaultBranch && !b.head().empty()) {
        auto c = GetCommit(name, b.head());
        if (c.ok() && *c) info.set_size_bytes((*c)->size_bytes());
      }
    }
    return true;
  }));
  return info;
}

absl::StatusOr<std::vector<RepoInfo>> PfsImpl::ListRepo() {
  std::vector<std::string> names;
  RETURN_IF_ERROR(kv_->ScanPrefix(kRepoSpace, [&](absl::string_view k, absl::string_view) {
    names.emplace_back(k.substr(1));
    return true;
  }));
  std::vector<RepoInfo> out;
  for (const auto& n : names) {
    auto r = InspectRepo(n);
    if (r.ok()) out.push_back(std::move(*r));
  }
  return out;
}

absl::Status PfsImpl::DeleteRepo(const std::string& name, bool force) {
  RETURN_IF_ERROR(ValidateRepoName(name));
  absl::MutexLock lock(&meta_mu_);
  ASSIGN_OR_RETURN(auto r, GetRepo(name));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", name, " not found"));
  std::vector<std::string> open;
  RETURN_IF_ERROR(kv_->ScanPrefix(BranchPrefix(name), [&](absl::string_view, absl::string_view v) {
    BranchInfo b;
    if (b.ParseFromString(std::string(v)) && !b.open_commit().empty())
      open.push_back(b.open_commit());
    return true;
  }));
  if (!open.empty() && !force) {
    return absl::FailedPreconditionError(absl::StrCat("repo ", name, " has an open commit (",
                                                      open[0], "); finish it or use --force"));
  }
  KvBatch batch;
  storage::v1::MetaEvent gone;
  gone.set_deleted_repo(name);
  for (const auto& id : open) {
    RETURN_IF_ERROR(kv_->DeletePrefix(StagePrefix(id), &batch));
  }
  batch.Delete(RepoKey(name));
  RETURN_IF_ERROR(kv_->DeletePrefix(BranchPrefix(name), &batch));
  RETURN_IF_ERROR(kv_->DeletePrefix(CommitPrefix(name), &batch));
  RETURN_IF_ERROR(WriteLogged({gone}, &batch));
  LOG(INFO) << "deleted repo " << name;
  return absl::OkStatus();
}

absl::StatusOr<RepoInfo> PfsImpl::UpdateRepo(const std::string& name,
                                             const std::optional<std::string>& description,
                                             const std::optional<v1::Retention>& retention) {
  RETURN_IF_ERROR(ValidateRepoName(name));
  if (retention && retention->has_keep_for() &&
      TimeUtil::DurationToNanoseconds(retention->keep_for()) < 0) {
    return absl::InvalidArgumentError("retention keep_for must not be negative");
  }
  {
    absl::MutexLock lock(&meta_mu_);
    ASSIGN_OR_RETURN(auto r, GetRepo(name));
    if (!r) return absl::NotFoundError(absl::StrCat("repo ", name, " not found"));
    if (description) r->set_description(*description);
    if (retention) {
      if (retention->keep_last() == 0 &&
          (!retention->has_keep_for() ||
           TimeUtil::DurationToNanoseconds(retention->keep_for()) == 0)) {
        r->clear_retention();
      } else {
        *r->mutable_retention() = *retention;
      }
    }
    KvBatch batch;
    batch.Put(RepoKey(name), r->SerializeAsString());
    RETURN_IF_ERROR(WriteLogged({RepoEvent(*r)}, &batch));
  }
  LOG(INFO) << "updated repo " << name;
  return InspectRepo(name);
}

absl::StatusOr<BranchInfo> PfsImpl::CreateBranch(const std::string& repo, const std::string& branch,
                                                 const std::string& head_ref) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateBranchName(branch));
  absl::MutexLock lock(&meta_mu_);
  ASSIGN_OR_RETURN(auto r, GetRepo(repo));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
  std::string head;
  if (!head_ref.empty()) {
    ASSIGN_OR_RETURN(CommitInfo c, ResolveCommit(repo, head_ref));
    if (c.state() != v1::FINISHED) {
      return absl::FailedPreconditionError(
          absl::StrCat("commit ", c.id(), " is open; a branch head must be a finished commit"));
    }
    head = c.id();
  }
  ASSIGN_OR_RETURN(auto existing, GetBranch(repo, branch));
  BranchInfo info;
  if (existing) {
    if (head_ref.empty()) {
      return absl::AlreadyExistsError(
          absl::StrCat("branch ", repo, "@", branch, " already exists"));
    }
    if (!existing->open_commit().empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("branch ", repo, "@", branch, " has an open commit (",
                       existing->open_commit(), "); finish it first"));
    }
    info = *existing;
  } else {
    info.set_repo(repo);
    info.set_name(branch);
    *info.mutable_created() = NowTimestamp();
  }
  info.set_head(head);
  KvBatch batch;
  batch.Put(BranchKey(repo, branch), info.SerializeAsString());
  RETURN_IF_ERROR(WriteLogged({BranchEvent(info)}, &batch));
  return info;
}

absl::StatusOr<BranchInfo> PfsImpl::InspectBranch(const std::string& repo,
                                                  const std::string& branch) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateBranchName(branch));
  ASSIGN_OR_RETURN(auto r, GetRepo(repo));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
  ASSIGN_OR_RETURN(auto b, GetBranch(repo, branch));
  if (!b) return absl::NotFoundError(absl::StrCat("branch ", repo, "@", branch, " not found"));
  // Subvenance by a scan of every branch: there are few, and a stored
  // reverse index would have to be kept right through pipeline updates.
  RETURN_IF_ERROR(kv_->ScanPrefix(kBranchSpace, [&](absl::string_view, absl::string_view v) {
    BranchInfo other;
    if (!other.ParseFromString(std::string(v))) return true;  // fsck reports corrupt records
    for (const auto& p : other.provenance()) {
      if (p.repo() == repo && p.name() == branch) {
        v1::BranchRef* ref = b->add_subvenance();
        ref->set_repo(other.repo());
        ref->set_name(other.name());
        break;
      }
    }
    return true;
  }));
  return *b;
}

absl::StatusOr<BranchInfo> PfsImpl::SetBranchProvenance(
    const std::string& repo, const std::string& branch,
    const std::vector<v1::BranchRef>& provenance) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateBranchName(branch));
  absl::MutexLock lock(&meta_mu_);
  ASSIGN_OR_RETURN(auto r, GetRepo(repo));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
  ASSIGN_OR_RETURN(auto existing, GetBranch(repo, branch));
  BranchInfo info;
  if (existing) {
    info = *existing;
  } else {
    info.set_repo(repo);
    info.set_name(branch);
    *info.mutable_created() = NowTimestamp();
  }
  info.clear_provenance();
  for (const auto& p : provenance) *info.add_provenance() = p;
  KvBatch batch;
  batch.Put(BranchKey(repo, branch), info.SerializeAsString());
  RETURN_IF_ERROR(WriteLogged({BranchEvent(info)}, &batch));
  return info;
}

absl::StatusOr<std::vector<BranchInfo>> PfsImpl::ListBranch(const std::string& repo) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  ASSIGN_OR_RETURN(auto r, GetRepo(repo));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
  std::vector<BranchInfo> out;
  absl::Status parse_status;
  RETURN_IF_ERROR(kv_->ScanPrefix(BranchPrefix(repo), [&](absl::string_view, absl::string_view v) {
    BranchInfo b;
    if (!b.ParseFromString(std::string(v))) {
      parse_status =
          absl::DataLossError(absl::StrCat("a branch record of repo ", repo, " is corrupt"));
      return false;
    }
    out.push_back(std::move(b));
    return true;
  }));
  RETURN_IF_ERROR(parse_status);
  return out;
}

absl::Status PfsImpl::DeleteBranch(const std::string& repo, const std::string& branch, bool force) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateBranchName(branch));
  absl::MutexLock lock(&meta_mu_);
  ASSIGN_OR_RETURN(auto b, GetBranch(repo, branch));
  if (!b) return absl::NotFoundError(absl::StrCat("branch ", repo, "@", branch, " not found"));
  KvBatch batch;
  if (!b->open_commit().empty()) {
    if (!force) {
      return absl::FailedPreconditionError(absl::StrCat("branch ", repo, "@", branch,
                                                        " has an open commit (", b->open_commit(),
                                                        "); finish it or use --force"));
    }
    RETURN_IF_ERROR(kv_->DeletePrefix(StagePrefix(b->open_commit()), &batch));
    batch.Delete(CommitKey(repo, b->open_commit()));
  }
  storage::v1::MetaEvent gone;
  gone.mutable_deleted_branch()->set_repo(repo);
  gone.mutable_deleted_branch()->set_name(branch);
  batch.Delete(BranchKey(repo, branch));
  return WriteLogged({gone}, &batch);
}

}  // namespace tusk::pfs
