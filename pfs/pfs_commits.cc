// Starting, finishing, listing, deleting and reverting commits.

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "pfs/keys.h"
#include "pfs/pfs_impl.h"
#include "pfs/pfs_metrics.h"
#include "pfs/records.h"
#include "pfs/refs.h"
#include "pfs/staged_tree.h"

namespace tusk::pfs {

using google::protobuf::util::TimeUtil;
using storage::v1::StagedOp;

absl::StatusOr<CommitInfo> PfsImpl::StartCommit(const std::string& repo, const std::string& branch,
                                                const std::string& message, v1::Origin origin,
                                                const std::map<std::string, std::string>& metadata,
                                                const CommitOptions& options) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateBranchName(branch));
  if (!options.id.empty() && !IsCommitId(options.id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("commit id '", options.id, "' is not 32 lowercase hex characters"));
  }
  absl::MutexLock lock(&meta_mu_);
  // An automatic commit, or one that a resumable upload owns, ends by
  // itself: wait for it instead of failing.
  const absl::Time deadline = absl::Now() + options.wait;
  while (true) {
    ASSIGN_OR_RETURN(auto b, GetBranch(repo, branch));
    if (!b || b->open_commit().empty()) break;
    ASSIGN_OR_RETURN(auto open, GetCommit(repo, b->open_commit()));
    if (!open || !WaitsForIt(*open)) break;  // StartCommitLocked says why not
    if (auto_commit_done_.WaitWithDeadline(&meta_mu_, deadline)) {
      return absl::DeadlineExceededError(BusyMessage(*open, options.wait));
    }
  }
  return StartCommitLocked(repo, branch, message, origin, metadata, false, options);
}

bool PfsImpl::WaitsForIt(const CommitInfo& open) {
  return open.automatic() || open.metadata().contains(kUploadOwnerMetadataKey);
}

std::string PfsImpl::BusyMessage(const CommitInfo& open, absl::Duration waited) {
  auto owner = open.metadata().find(kUploadOwnerMetadataKey);
  if (owner != open.metadata().end()) {
    return absl::StrCat("branch ", open.repo(), "@", open.branch(), " is still busy after ",
                        absl::FormatDuration(waited), ": its open commit ", open.id(),
                        " belongs to the upload '", owner->second,
                        "' (running, or interrupted: run it again to resume it, or finish the "
                        "commit with 'tusk finish commit ",
                        open.repo(), "@", open.id(), "')");
  }
  return absl::StrCat("branch ", open.repo(), "@", open.branch(),
                      " is still busy with automatic commit ", open.id(), " after ",
                      absl::FormatDuration(waited));
}

absl::Status PfsImpl::CarryMetadata(const std::string& repo, const std::string& parent,
                                    CommitInfo* c) {
  if (parent.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto p, GetCommit(repo, parent));
  if (!p) return absl::DataLossError(absl::StrCat("parent commit ", parent, " is missing"));
  for (const auto& [k, v] : p->metadata()) {
    if (absl::StartsWith(k, kCarriedMetadataPrefix)) (*c->mutable_metadata())[k] = v;
  }
  return absl::OkStatus();
}

absl::StatusOr<CommitInfo> PfsImpl::StartCommitLocked(
    const std::string& repo, const std::string& branch, const std::string& message,
    v1::Origin origin, const std::map<std::string, std::string>& metadata, bool automatic,
    const CommitOptions& options) {
  ASSIGN_OR_RETURN(auto r, GetRepo(repo));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
  ASSIGN_OR_RETURN(auto existing, GetBranch(repo, branch));
  BranchInfo b;
  if (existing) {
    b = *existing;
    if (!b.open_commit().empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "branch ", repo, "@", branch, " already has an open commit (", b.open_commit(), ")"));
    }
  } else {
    b.set_repo(repo);
    b.set_name(branch);
    *b.mutable_created() = NowTimestamp();
  }
  CommitInfo c;
  c.set_id(options.id.empty() ? NewCommitId() : options.id);
  if (!options.id.empty()) {
    ASSIGN_OR_RETURN(auto taken, GetCommit(repo, options.id));
    if (taken) {
      return absl::AlreadyExistsError(
          absl::StrCat("commit ", repo, "@", options.id, " already exists"));
    }
  }
  c.set_repo(repo);
  c.set_branch(branch);
  c.set_parent(b.head());
  c.set_state(v1::OPEN);
  c.set_origin(origin == v1::ORIGIN_UNSPECIFIED ? v1::USER : origin);
  c.set_message(message);
  *c.mutable_started() = NowTimestamp();
  c.set_commit_set(options.commit_set.empty() ? c.id() : options.commit_set);
  c.set_automatic(automatic);
  for (const auto& p : options.provenance) *c.add_provenance() = p;
  RETURN_IF_ERROR(CarryMetadata(repo, b.head(), &c));
  for (const auto& [k, v] : metadata) (*c.mutable_metadata())[k] = v;
  b.set_open_commit(c.id());
  KvBatch batch;
  batch.Put(CommitKey(repo, c.id()), c.SerializeAsString());
  batch.Put(BranchKey(repo, branch), b.SerializeAsString());
  batch.Put(CommitSetKey(c.commit_set(), repo, c.id()), "");
  for (const auto& p : c.provenance()) {
    batch.Put(SubvenanceKey(p.repo(), p.id(), repo, c.id()), "");
  }
  // Not synced: an open commit holds nothing of value until it is finished,
  // and the finishing write syncs everything before it.
  RETURN_IF_ERROR(kv_->Write(&batch, /*sync=*/false));
  return c;
}

absl::StatusOr<CommitInfo> PfsImpl::FinishCommit(const std::string& repo, const std::string& ref,
                                                 const FinishOptions& options) {
  ASSIGN_OR_RETURN(std::string id, OpenCommitId(repo, ref, "finish commit"));
  return FinishCommitById(repo, id, options);
}

absl::StatusOr<std::string> PfsImpl::OpenCommitId(const std::string& repo, const std::string& ref,
                                                  const std::string& what) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  ASSIGN_OR_RETURN(ParsedRef parsed, ParseRef(ref.empty() ? std::string(kDefaultBranch) : ref));
  if (parsed.ancestors > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " needs a branch or a commit id, not '", ref, "'"));
  }
  if (parsed.is_commit_id) return parsed.base;
  ASSIGN_OR_RETURN(auto r, GetRepo(repo));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
  ASSIGN_OR_RETURN(auto b, GetBranch(repo, parsed.base));
  if (!b) return absl::NotFoundError(absl::StrCat("branch ", repo, "@", parsed.base, " not found"));
  if (b->open_commit().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("branch ", repo, "@", parsed.base, " has no open commit"));
  }
  return b->open_commit();
}

absl::StatusOr<PfsImpl::Staged> PfsImpl::ReadStaged(const std::string& id) {
  Staged staged;
  absl::Status parse_status;
  std::string prefix = StagePrefix(id);
  RETURN_IF_ERROR(kv_->ScanPrefix(prefix, [&](absl::string_view k, absl::string_view v) {
    StagedOp op;
    if (!op.ParseFromString(std::string(v))) {
      parse_status = absl::DataLossError(
          absl::StrCat("staged write ", k.substr(prefix.size()), " of commit ", id, " is corrupt"));
      return false;
    }
    staged.keys.emplace_back(k);
    staged.tree.Add(k.substr(prefix.size()), op);
    if (op.kind() == StagedOp::PUT) staged.files.push_back(op.entry());
    return true;
  }));
  RETURN_IF_ERROR(parse_status);
  return staged;
}

absl::Status PfsImpl::AddFileBlobs(const std::vector<Entry>& files, std::vector<Hash>* blobs) {
  absl::flat_hash_set<Hash> seen(blobs->begin(), blobs->end());
  auto add = [&](const Hash& h) {
    if (seen.insert(h).second) blobs->push_back(h);
  };
  for (const Entry& e : files) {
    if (e.chunk_list_blob()) {
      ASSIGN_OR_RETURN(Hash list, Hash::FromRaw(e.hash()));
      add(list);
    }
    ASSIGN_OR_RETURN(ChunkList chunks, nodes_->GetChunks(e));
    for (const auto& ref : chunks.chunks()) {
      ASSIGN_OR_RETURN(Hash h, Hash::FromRaw(ref.hash()));
      add(h);
    }
  }
  return absl::OkStatus();
}

absl::Status PfsImpl::CheckParentMetadata(const std::string& repo, const CommitInfo& c,
                                          const std::map<std::string, std::string>& expect) {
  if (expect.empty()) return absl::OkStatus();
  CommitInfo parent;
  if (!c.parent().empty()) {
    ASSIGN_OR_RETURN(auto p, GetCommit(repo, c.parent()));
    if (p) parent = *p;
  }
  for (const auto& [k, want] : expect) {
    auto it = parent.metadata().find(k);
    std::string have = it == parent.metadata().end() ? "" : it->second;
    if (have != want) {
      return absl::AbortedError(absl::StrCat(
          "precondition failed: metadata '", k, "' of parent commit ",
          c.parent().empty() ? "(none)" : c.parent(), " is '", have, "', expected '", want, "'"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CommitInfo> PfsImpl::FinishCommitById(const std::string& repo, const std::string& id,
                                                     const FinishOptions& options) {
  auto commit_lock = CommitLock(id);
  absl::WriterMutexLock finish_lock(commit_lock.get());
  ASSIGN_OR_RETURN(auto c, GetCommit(repo, id));
  if (!c) return absl::NotFoundError(absl::StrCat("commit ", id, " not found in repo ", repo));
  if (c->state() == v1::FINISHED) {
    return absl::FailedPreconditionError(
        absl::StrCat("commit ", repo, "@", id, " is already finished"));
  }
  Hash parent_root;
  if (!c->parent().empty()) {
    ASSIGN_OR_RETURN(auto p, GetCommit(repo, c->parent()));
    if (!p) return absl::DataLossError(absl::StrCat("parent commit ", c->parent(), " is missing"));
    ASSIGN_OR_RETURN(parent_root, RootHash(*p));
  }
  ASSIGN_OR_RETURN(Staged staged, ReadStaged(id));
  auto writer = blobs_->NewWriter();
  ASSIGN_OR_RETURN(DirInfo root, staged.tree.Apply(nodes_.get(), writer.get(), parent_root));
  KvBatch batch;
  const bool strict = options_.log_mode == LogMode::kStrict;
  std::vector<PreparedBlob> tail;  // strict: new nodes go into the log pack
  RETURN_IF_ERROR(writer->Finish(&batch, strict ? &tail : nullptr));
  // The blobs this commit adds to its parent's tree: the log pack carries the
  // ones that are still only in the index.
  std::vector<Hash> new_blobs = writer->Touched();
  RETURN_IF_ERROR(AddFileBlobs(staged.files, &new_blobs));
  // Read outside the metadata lock: if the packer moves one of these blobs
  // meanwhile, both copies are valid.
  std::vector<PreparedBlob> log_blobs = std::move(tail);
  if (strict) RETURN_IF_ERROR(blobs_->CollectInline(new_blobs, &log_blobs));

  absl::MutexLock lock(&meta_mu_);
  // The parent cannot change while this commit is open (one open commit per
  // branch), so checking here, in the finishing critical section, is atomic
  // with the finish.
  RETURN_IF_ERROR(CheckParentMetadata(repo, *c, options.expect_metadata));
  ASSIGN_OR_RETURN(auto b, GetBranch(repo, c->branch()));
  c->set_state(v1::FINISHED);
  *c->mutable_finished() = NowTimestamp();
  c->set_root(root.hash.IsZero() ? "" : root.hash.Hex());
  c->set_size_bytes(root.size);
  c->set_file_count(root.file_count);
  if (!options.message.empty()) c->set_message(options.message);
  for (const auto& [k, v] : options.metadata) (*c->mutable_metadata())[k] = v;
  if (!options.error.empty()) c->set_error(options.error);
  std::vector<storage::v1::MetaEvent> events = {CommitEvent(*c)};
  if (b && b->open_commit() == id) {
    b->set_open_commit("");
    b->set_head(id);
    events.push_back(BranchEvent(*b));
  }
  batch.Put(CommitKey(repo, id), c->SerializeAsString());
  if (b && b->head() == id) batch.Put(BranchKey(repo, c->branch()), b->SerializeAsString());
  for (const auto& k : staged.keys) batch.Delete(k);
  if (hook_ != nullptr) RETURN_IF_ERROR(hook_->BeforeFinish(*c, &batch));
  if (options.extra != nullptr) batch.Append(*options.extra);
  if (options.records != nullptr)
    RETURN_IF_ERROR(AddRecordChanges(*options.records, &events, &batch));
  // The log (strict: to the object store first) then the index, so that
  // the object store can find this commit and all it references on its own.
  RETURN_IF_ERROR(WriteLogged(std::move(events), &batch, log_blobs, new_blobs));
  auto_commit_done_.SignalAll();  // a waiting writer may go on
  if (hook_ != nullptr) hook_->AfterFinish(*c);
  Metrics().commits_finished->Inc();
  VLOG(1) << "finished commit " << repo << "@" << id << " (" << root.file_count << " files, "
          << root.size << " bytes)";
  return *c;
}

absl::Status PfsImpl::DropOpenCommit(const std::string& repo, const std::string& id) {
  auto commit_lock = CommitLock(id);
  absl::WriterMutexLock finish_lock(commit_lock.get());
  absl::MutexLock lock(&meta_mu_);
  ASSIGN_OR_RETURN(auto c, GetCommit(repo, id));
  if (!c || c->state() != v1::OPEN) return absl::OkStatus();
  KvBatch batch;
  ASSIGN_OR_RETURN(auto b, GetBranch(repo, c->branch()));
  if (b && b->open_commit() == id) {
    b->set_open_commit("");
    batch.Put(BranchKey(repo, c->branch()), b->SerializeAsString());
  }
  batch.Delete(CommitKey(repo, id));
  RETURN_IF_ERROR(kv_->DeletePrefix(StagePrefix(id), &batch));
  RETURN_IF_ERROR(kv_->Write(&batch, /*sync=*/false));
  auto_commit_done_.SignalAll();  // a waiting writer may go on
  return absl::OkStatus();
}

absl::Status PfsImpl::ListCommitSet(const std::string& commit_set,
                                    const std::function<absl::Status(const CommitInfo&)>& fn) {
  ASSIGN_OR_RETURN(auto ids, ScanCommitPairs(kv_.get(), absl::StrCat("k", commit_set, kNul)));
  for (const auto& [repo, id] : ids) {
    ASSIGN_OR_RETURN(auto c, GetCommit(repo, id));
    if (c) RETURN_IF_ERROR(fn(*c));  // gone with a deleted repo otherwise
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::CommitRef>> PfsImpl::Subvenance(const std::string& repo,
                                                               const std::string& id) {
  std::vector<v1::CommitRef> out;
  ASSIGN_OR_RETURN(auto ids, ScanCommitPairs(kv_.get(), SubvenancePrefix(repo, id)));
  for (const auto& [r, i] : ids) {
    ASSIGN_OR_RETURN(auto c, GetCommit(r, i));
    if (!c) continue;
    v1::CommitRef ref;
    ref.set_repo(r);
    ref.set_id(i);
    ref.set_branch(c->branch());
    out.push_back(std::move(ref));
  }
  return out;
}

absl::StatusOr<CommitInfo> PfsImpl::InspectCommit(const std::string& repo, const std::string& ref) {
  ASSIGN_OR_RETURN(CommitInfo c, ResolveCommit(repo, ref));
  ASSIGN_OR_RETURN(auto sub, Subvenance(repo, c.id()));
  for (auto& r : sub) *c.add_subvenance() = std::move(r);
  return c;
}

absl::Status PfsImpl::ListCommit(const std::string& repo, const std::string& ref, uint64_t limit,
                                 const std::function<absl::Status(const CommitInfo&)>& fn) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  ASSIGN_OR_RETURN(auto r, GetRepo(repo));
  if (!r) return absl::NotFoundError(absl::StrCat("repo ", repo, " not found"));
  uint64_t n = 0;
  if (ref.empty()) {
    std::vector<CommitInfo> all;
    RETURN_IF_ERROR(
        kv_->ScanPrefix(CommitPrefix(repo), [&](absl::string_view, absl::string_view v) {
          CommitInfo c;
          if (c.ParseFromString(std::string(v))) all.push_back(std::move(c));
          return true;
        }));
    std::sort(all.begin(), all.end(), [](const CommitInfo& a, const CommitInfo& b) {
      return TimeUtil::TimestampToNanoseconds(a.started()) >
             TimeUtil::TimestampToNanoseconds(b.started());
    });
    for (const auto& c : all) {
      if (limit > 0 && n >= limit) break;
      RETURN_IF_ERROR(fn(c));
      ++n;
    }
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(ParsedRef parsed, ParseRef(ref));
  std::optional<CommitInfo> c;
  if (!parsed.is_commit_id && parsed.ancestors == 0) {
    ASSIGN_OR_RETURN(auto b, GetBranch(repo, parsed.base));
    if (!b)
      return absl::NotFoundError(absl::StrCat("branch ", repo, "@", parsed.base, " not found"));
    if (!b->open_commit().empty()) {
      ASSIGN_OR_RETURN(auto open, GetCommit(repo, b->open_commit()));
      if (open) {
        RETURN_IF_ERROR(fn(*open));
        ++n;
      }
    }
    if (b->head().empty()) return absl::OkStatus();
    ASSIGN_OR_RETURN(c, GetCommit(repo, b->head()));
  } else {
    ASSIGN_OR_RETURN(c, ResolveCommit(repo, ref));
  }
  while (c && (limit == 0 || n < limit)) {
    RETURN_IF_ERROR(fn(*c));
    ++n;
    if (c->parent().empty()) break;
    ASSIGN_OR_RETURN(c, GetCommit(repo, c->parent()));
  }
  return absl::OkStatus();
}

absl::StatusOr<CommitInfo> PfsImpl::Revert(const std::string& repo, const std::string& branch,
                                           const std::string& to, const std::string& message) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateBranchName(branch));
  ASSIGN_OR_RETURN(CommitInfo target, ResolveForRead(repo, to));
  absl::MutexLock lock(&meta_mu_);
  ASSIGN_OR_RETURN(auto b, GetBranch(repo, branch));
  if (!b) return absl::NotFoundError(absl::StrCat("branch ", repo, "@", branch, " not found"));
  if (!b->open_commit().empty()) {
    return absl::FailedPreconditionError(absl::StrCat("branch ", repo, "@", branch,
                                                      " has an open commit (", b->open_commit(),
                                                      "); finish it first"));
  }
  CommitInfo c;
  c.set_id(NewCommitId());
  c.set_repo(repo);
  c.set_branch(branch);
  c.set_parent(b->head());
  c.set_state(v1::FINISHED);
  c.set_origin(v1::USER);
  c.set_message(message.empty() ? absl::StrCat("revert to ", target.id()) : message);
  *c.mutable_started() = NowTimestamp();
  *c.mutable_finished() = c.started();
  c.set_root(target.root());
  c.set_size_bytes(target.size_bytes());
  c.set_file_count(target.file_count());
  c.set_commit_set(c.id());
  // Carried state describes what the branch has consumed, not its tree: it
  // comes from the head being replaced, not from the revert target.
  RETURN_IF_ERROR(CarryMetadata(repo, b->head(), &c));
  (*c.mutable_metadata())["reverted_to"] = target.id();
  b->set_head(c.id());
  KvBatch batch;
  batch.Put(CommitKey(repo, c.id()), c.SerializeAsString());
  batch.Put(BranchKey(repo, branch), b->SerializeAsString());
  RETURN_IF_ERROR(WriteLogged({CommitEvent(c), BranchEvent(*b)}, &batch));
  LOG(INFO) << "reverted " << repo << "@" << branch << " to " << target.id();
  return c;
}

absl::StatusOr<std::vector<BranchInfo>> PfsImpl::DeleteCommit(const std::string& repo,
                                                              const std::string& ref) {
  ASSIGN_OR_RETURN(CommitInfo c, ResolveCommit(repo, ref));
  absl::MutexLock lock(&meta_mu_);
  ASSIGN_OR_RETURN(auto current, GetCommit(repo, c.id()));
  if (!current)
    return absl::NotFoundError(absl::StrCat("commit ", repo, "@", c.id(), " not found"));
  c = *current;
  if (c.state() != v1::FINISHED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "commit ", repo, "@", c.id(), " is open; finish it (or delete its branch) first"));
  }
  // Children: commits whose parent it is (open ones included).
  std::vector<std::string> children;
  RETURN_IF_ERROR(kv_->ScanPrefix(CommitPrefix(repo), [&](absl::string_view, absl::string_view v) {
    CommitInfo other;
    if (other.ParseFromString(std::string(v)) && other.parent() == c.id())
      children.push_back(other.id());
    return true;
  }));
  if (!children.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("commit ", repo, "@", c.id(), " has ", children.size(), " child commit",
                     children.size() == 1 ? "" : "s", " (", children[0],
                     "); delete those first, or let the repo's retention squash old history"));
  }
  ASSIGN_OR_RETURN(auto sub, ScanCommitPairs(kv_.get(), SubvenancePrefix(repo, c.id())));
  for (const auto& [r, id] : sub) {
    ASSIGN_OR_RETURN(auto s, GetCommit(r, id));
    if (s) {
      return absl::FailedPreconditionError(absl::StrCat("commit ", repo, "@", c.id(),
                                                        " has commits computed from it (", r, "@",
                                                        id, "); delete those first"));
    }
  }
  std::vector<BranchInfo> moved;
  RETURN_IF_ERROR(kv_->ScanPrefix(BranchPrefix(repo), [&](absl::string_view, absl::string_view v) {
    BranchInfo b;
    if (b.ParseFromString(std::string(v)) && b.head() == c.id()) moved.push_back(std::move(b));
    return true;
  }));
  std::vector<storage::v1::MetaEvent> events;
  storage::v1::MetaEvent gone;
  gone.mutable_deleted_commit()->set_repo(repo);
  gone.mutable_deleted_commit()->set_id(c.id());
  events.push_back(gone);
  for (auto& b : moved) {
    b.set_head(c.parent());
    events.push_back(BranchEvent(b));
  }
  KvBatch batch;
  batch.Delete(CommitKey(repo, c.id()));
  batch.Delete(CommitSetKey(c.commit_set(), repo, c.id()));
  for (const auto& p : c.provenance()) batch.Delete(SubvenanceKey(p.repo(), p.id(), repo, c.id()));
  RETURN_IF_ERROR(kv_->DeletePrefix(SubvenancePrefix(repo, c.id()), &batch));
  for (const auto& b : moved) batch.Put(BranchKey(repo, b.name()), b.SerializeAsString());
  RETURN_IF_ERROR(WriteLogged(std::move(events), &batch));
  LOG(INFO) << "deleted commit " << repo << "@" << c.id();
  return moved;
}

}  // namespace tusk::pfs
