// Garbage collection: marks what is live, sweeps the blob index, deletes dead
// packs and rewrites sparse and small ones.

#include <algorithm>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "pfs/keys.h"
#include "pfs/pfs_impl.h"
#include "pfs/pfs_metrics.h"
#include "pfs/records.h"
#include "pfs/refs.h"

namespace tusk::pfs {

using google::protobuf::util::TimeUtil;

namespace {

// Marks into a set: trees are walked once per distinct node.
class SetMarker : public GcMarker {
 public:
  SetMarker(NodeStore* nodes, absl::flat_hash_set<Hash>* live) : nodes_(nodes), live_(live) {}

  absl::Status Tree(const Hash& root) override {
    std::vector<Hash> stack;
    if (!root.IsZero()) stack.push_back(root);
    while (!stack.empty()) {
      Hash h = stack.back();
      stack.pop_back();
      // Visited apart from `live`, which may hold a node already (an upload
      // touched it) whose subtree is still to be marked.
      if (!visited_.insert(h).second) continue;
      live_->insert(h);
      ASSIGN_OR_RETURN(auto node, nodes_->Get(h));
      for (const auto& c : node->children()) {
        ASSIGN_OR_RETURN(Hash ch, Hash::FromRaw(c.hash()));
        stack.push_back(ch);
      }
      for (const auto& e : node->entries()) {
        ASSIGN_OR_RETURN(Hash eh, Hash::FromRaw(e.hash()));
        if (e.type() == Entry::DIR) {
          stack.push_back(eh);
          continue;
        }
        RETURN_IF_ERROR(File(e));
      }
    }
    return absl::OkStatus();
  }

  absl::Status File(const Entry& e) {
    ASSIGN_OR_RETURN(Hash eh, Hash::FromRaw(e.hash()));
    if (!visited_.insert(eh).second) return absl::OkStatus();
    if (e.chunk_list_blob()) live_->insert(eh);
    ASSIGN_OR_RETURN(ChunkList list, nodes_->GetChunks(e));
    Chunks(list);
    return absl::OkStatus();
  }

  void Chunks(const ChunkList& chunks) override {
    for (const auto& ref : chunks.chunks()) {
      auto h = Hash::FromRaw(ref.hash());
      if (h.ok()) live_->insert(*h);
    }
  }

 private:
  NodeStore* nodes_;
  absl::flat_hash_set<Hash>* live_;
  absl::flat_hash_set<Hash> visited_;  // tree nodes and files walked
};

}  // namespace

void PfsImpl::AddGcSource(std::function<absl::Status(GcMarker*)> source) {
  gc_sources_.push_back(std::move(source));
}

absl::Status PfsImpl::Mark(absl::flat_hash_set<Hash>* live) {
  SetMarker marker(nodes_.get(), live);
  // Files staged in open commits first, then commits: a commit that
  // finishes between the two scans is seen in the second (its files were
  // staged in the first); read the other way round, it would be in neither.
  std::vector<Entry> staged;
  RETURN_IF_ERROR(kv_->ScanPrefix(kStageSpace, [&](absl::string_view, absl::string_view v) {
    storage::v1::StagedOp op;
    if (op.ParseFromString(std::string(v)) && op.kind() == storage::v1::StagedOp::PUT) {
      staged.push_back(op.entry());
    }
    return true;
  }));
  std::vector<Hash> roots;
  absl::Status parse;
  RETURN_IF_ERROR(kv_->ScanPrefix(kCommitSpace, [&](absl::string_view k, absl::string_view v) {
    CommitInfo c;
    if (!c.ParseFromString(std::string(v))) {
      parse = absl::DataLossError(absl::StrCat("commit record ", k.substr(1), " is corrupt"));
      return false;
    }
    auto root = RootHash(c);
    if (!root.ok()) {
      parse = root.status();
      return false;
    }
    roots.push_back(*root);
    return true;
  }));
  RETURN_IF_ERROR(parse);
  for (const Hash& r : roots) RETURN_IF_ERROR(Annotate(marker.Tree(r), "marking commits"));
  for (const Entry& e : staged) RETURN_IF_ERROR(Annotate(marker.File(e), "marking staged files"));
  for (const auto& source : gc_sources_) RETURN_IF_ERROR(source(&marker));
  return absl::OkStatus();
}

namespace {

// How much of each pack is live (by pack id).
struct PackUse {
  uint64_t live_bytes = 0, live_blobs = 0;
};
using PackUses = absl::flat_hash_map<std::string, PackUse>;

// The pack pass of a GC: deletes dead packs; rewrites the mostly dead, and
// merges small ones (a log pack per micro-commit adds up), into packs of the
// usual size.
class PackPass {
 public:
  PackPass(BlobStore* blobs, ObjectStore* store, Kv* kv, const GcOptions& options,
           absl::Time cutoff, const absl::flat_hash_set<Hash>& live,
           const absl::flat_hash_set<Hash>& in_flight, const PackUses& use, v1::GcResponse* stats)
      : blobs_(blobs),
        store_(store),
        kv_(kv),
        options_(options),
        cutoff_(cutoff),
        live_(live),
        in_flight_(in_flight),
        use_(use),
        stats_(stats),
        small_(std::max<uint64_t>(blobs->options().pack_size / 16, 64 << 10)) {}

  absl::Status Run() {
    std::vector<std::pair<std::string, uint64_t>> packs;
    RETURN_IF_ERROR(store_->List(kPackPrefix, [&](const std::string& key, uint64_t size) {
      packs.emplace_back(key, size);
    }));
    stats_->set_packs(packs.size());
    for (const auto& [key, size] : packs) RETURN_IF_ERROR(Consider(key, size));
    return Flush(/*last=*/true);
  }

 private:
  absl::Status Consider(const std::string& key, uint64_t size);
  // Whether the footer says the pack must stay whole for now.
  bool MustKeep(const storage::v1::PackFooter& footer);
  absl::Status Flush(bool last);

  BlobStore* const blobs_;
  ObjectStore* const store_;
  Kv* const kv_;
  const GcOptions& options_;
  const absl::Time cutoff_;
  const absl::flat_hash_set<Hash>& live_;
  const absl::flat_hash_set<Hash>& in_flight_;
  const PackUses& use_;
  v1::GcResponse* const stats_;
  const uint64_t small_;
  // The live blobs being copied into a new pack, and the packs they come from.
  struct Group {
    std::vector<PreparedBlob> blobs;
    uint64_t bytes = 0, source_bytes = 0;
    std::vector<std::string> sources;
    bool sparse = false;
  } group_;
};

absl::Status PackPass::Consider(const std::string& key, uint64_t size) {
  std::string id = PackIdFromKey(key);
  if (id.empty() || (PackTime(id) >= cutoff_ && !blobs_->IsAbandoned(id))) return absl::OkStatus();
  auto it = use_.find(id);
  PackUse u = it == use_.end() ? PackUse{} : it->second;
  stats_->set_bytes_live(stats_->bytes_live() + u.live_bytes);
  bool dead = u.live_blobs == 0;
  bool sparse =
      !dead && options_.rewrite_below > 0 &&
      static_cast<double>(u.live_bytes) < options_.rewrite_below * static_cast<double>(size);
  bool merge = !dead && size < small_;
  if (!dead && !sparse && !merge) return absl::OkStatus();
  // A pack to copy from is read whole, once.
  std::string whole;
  auto footer = ReadPackFooter(store_, key, size, dead ? nullptr : &whole);
  if (!footer.ok()) {
    LOG(WARNING) << "gc: skipping " << key << ": " << footer.status();
    return absl::OkStatus();
  }
  if (MustKeep(*footer)) return absl::OkStatus();
  if (dead) {
    RETURN_IF_ERROR(Annotate(store_->Delete(key), "gc"));
    blobs_->ForgetAbandoned(id);
    stats_->set_packs_deleted(stats_->packs_deleted() + 1);
    stats_->set_bytes_deleted(stats_->bytes_deleted() + size);
    return absl::OkStatus();
  }
  // Copy the live blobs out; the index moves to the new pack at Flush.
  for (const auto& item : footer->items()) {
    ASSIGN_OR_RETURN(Hash h, Hash::FromRaw(item.hash()));
    auto loc = blobs_->Locate(h);
    if (!loc.ok() || loc->pack() != id || !live_.contains(h)) continue;
    PreparedBlob b;
    b.hash = h;
    b.raw_size = item.raw_size();
    b.codec = item.codec();
    b.stored = whole.substr(item.offset(), item.stored_size());
    group_.bytes += b.stored.size();
    group_.blobs.push_back(std::move(b));
  }
  group_.sources.push_back(key);
  group_.source_bytes += size;
  group_.sparse = group_.sparse || sparse;
  if (group_.bytes >= blobs_->options().pack_size) RETURN_IF_ERROR(Flush(/*last=*/false));
  return absl::OkStatus();
}

bool PackPass::MustKeep(const storage::v1::PackFooter& footer) {
  // A log newer than the checkpoint is still the only record of its change
  // (possible only with a clock that jumped).
  for (const auto& l : footer.logs()) {
    if (l.seq() > stats_->checkpoint_seq()) return true;
  }
  // The footer has the last word on what the pack holds: a blob of an
  // upload in progress, or a live blob with no index record (its writer has
  // not written it yet), keeps the pack whole for now.
  for (const auto& item : footer.items()) {
    auto h = Hash::FromRaw(item.hash());
    if (!h.ok()) continue;
    if (in_flight_.contains(*h)) return true;
    if (live_.contains(*h) && !blobs_->Locate(*h).ok()) return true;
  }
  return false;
}

absl::Status PackPass::Flush(bool last) {
  // A lone small pack gains nothing from being copied.
  if (group_.sources.empty() || (last && group_.sources.size() < 2 && !group_.sparse)) {
    group_ = Group();
    return absl::OkStatus();
  }
  KvBatch batch;
  std::string pack_id;
  if (!group_.blobs.empty())
    RETURN_IF_ERROR(blobs_->WritePack(group_.blobs, &batch, nullptr, &pack_id));
  RETURN_IF_ERROR(blobs_->DropPackIfUnindexed(kv_->Write(&batch, /*sync=*/true), pack_id));
  for (const auto& key : group_.sources) RETURN_IF_ERROR(Annotate(store_->Delete(key), "gc"));
  stats_->set_packs_rewritten(stats_->packs_rewritten() + group_.sources.size());
  stats_->set_bytes_deleted(stats_->bytes_deleted() + group_.source_bytes -
                            std::min(group_.source_bytes, group_.bytes));
  group_ = Group();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::GcResponse> PfsImpl::Gc(const GcOptions& options) {
  absl::MutexLock one(&gc_mu_);
  const absl::Time start = absl::Now();
  const absl::Time cutoff = start - options.grace;
  v1::GcResponse stats;
  ASSIGN_OR_RETURN(uint64_t squashed, ApplyRetention(start));
  stats.set_commits_squashed(squashed);
  ASSIGN_OR_RETURN(uint64_t checkpoint_seq, WriteCheckpoint());
  stats.set_checkpoint_seq(checkpoint_seq);

  absl::flat_hash_set<Hash> live;
  // From here every dedup hit counts as live. Uploads in progress count with
  // what they touched before: taken before the mark, so that one finishing
  // while the commits are walked is covered either way. What they touched
  // is also kept apart: a writer may not have written the index records of
  // its packs yet, so a pack that holds such a blob is left alone.
  absl::flat_hash_set<Hash> in_flight;
  blobs_->BeginGcMark();
  blobs_->AddInFlight(&in_flight);
  RETURN_IF_ERROR(Mark(&live));
  blobs_->AddInFlight(&in_flight);
  live.insert(in_flight.begin(), in_flight.end());

  // Sweep the index: per pack, what stays.
  PackUses use;
  RETURN_IF_ERROR(blobs_->SweepIndex(
      &live, [&](const Hash& h, const storage::v1::BlobLocation& loc, bool is_live) {
        if (loc.pack().empty()) return false;  // inline: only in the index, packed later
        if (is_live) {
          PackUse& u = use[loc.pack()];
          u.live_bytes += loc.stored_size();
          u.live_blobs++;
          return false;
        }
        if (PackTime(loc.pack()) >= cutoff && !blobs_->IsAbandoned(loc.pack())) {
          use[loc.pack()];  // young: kept whole
          return false;
        }
        stats.set_blobs_deleted(stats.blobs_deleted() + 1);
        return true;
      }));
  stats.set_live_blobs(live.size());
  PackPass packs(blobs_.get(), store_, kv_.get(), options, cutoff, live, in_flight, use, &stats);
  RETURN_IF_ERROR(packs.Run());
  absl::Duration took = absl::Now() - start;
  Metrics().gc_runs->Inc();
  Metrics().gc_reclaimed_bytes->Inc(static_cast<double>(stats.bytes_deleted()));
  *stats.mutable_took() = TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(took));
  LOG(INFO) << "gc: " << stats.live_blobs() << " live blobs; deleted " << stats.packs_deleted()
            << " of " << stats.packs() << " packs and rewrote or merged " << stats.packs_rewritten()
            << " (" << stats.bytes_deleted() << " bytes freed), " << stats.blobs_deleted()
            << " index records; checkpoint at seq " << stats.checkpoint_seq() << "; took "
            << absl::FormatDuration(took);
  return stats;
}

}  // namespace tusk::pfs
