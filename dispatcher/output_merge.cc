#include "dispatcher/output_merge.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace tusk::dispatcher {
namespace {

// Contributions that change, by output path: datum key -> chunks (nullopt: gone).
using Delta = std::map<std::string, std::map<std::string, std::optional<pfs::ChunkList>>>;

// Adds the files of the tree `root_hex` as contributions of datum `key`
// (add), or as contributions it no longer makes.
absl::Status AddTree(pfs::NodeStore* nodes, const std::string& root_hex, const std::string& key,
                     bool add, Delta* delta) {
  if (root_hex.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(Hash root, Hash::FromHex(root_hex));
  if (root.IsZero()) return absl::OkStatus();
  return pfs::WalkFiles(nodes, root, "/", [&](const std::string& path, const pfs::Entry& e) {
    if (!add) {
      (*delta)[path].emplace(key, std::nullopt);  // an add of the same key wins
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(pfs::ChunkList chunks, nodes->GetChunks(e));
    (*delta)[path][key] = std::move(chunks);
    return absl::OkStatus();
  });
}

}  // namespace

absl::StatusOr<MergePlan> PlanMerge(pfs::NodeStore* nodes, const JobStore& store,
                                    const std::string& pipeline,
                                    const std::map<std::string, DatumInfo>& touched,
                                    const std::map<std::string, std::string>& old_roots,
                                    pfs::KvBatch* batch) {
  Delta delta;
  for (const auto& [key, di] : touched) {
    auto old = old_roots.find(key);
    const std::string old_root = old == old_roots.end() ? "" : old->second;
    bool ok = di.state() == pps::v1::DATUM_SUCCESS || di.state() == pps::v1::DATUM_SKIPPED;
    std::string new_root = ok ? di.output_root() : "";
    if (old_root != new_root) {
      RETURN_IF_ERROR(AddTree(nodes, new_root, key, true, &delta));
      RETURN_IF_ERROR(AddTree(nodes, old_root, key, false, &delta));
    }
    if (di.state() == pps::v1::DATUM_REMOVED) {
      store.RemoveCurrent(pipeline, key, batch);
      continue;
    }
    DatumInfo c = di;
    c.set_state(ok ? pps::v1::DATUM_SUCCESS : pps::v1::DATUM_FAILED);
    c.set_output_root(new_root);
    store.SetCurrent(pipeline, c, batch);
  }
  // New content of each affected path: all its contributions in key order.
  MergePlan plan;
  for (auto& [path, changes] : delta) {
    ASSIGN_OR_RETURN(auto contributions, store.Contributions(pipeline, path));
    for (auto& [key, chunks] : changes) {
      if (chunks) {
        store.PutContribution(pipeline, path, key, *chunks, batch);
        contributions[key] = std::move(*chunks);
      } else {
        store.DeleteContribution(pipeline, path, key, batch);
        contributions.erase(key);
      }
    }
    if (contributions.empty()) {
      plan.deletes.push_back(path);
      continue;
    }
    std::vector<pfs::ChunkRef> all;
    for (const auto& [key, list] : contributions) {
      for (const auto& c : list.chunks()) all.push_back(c);
    }
    plan.puts.emplace_back(path, std::move(all));
  }
  return plan;
}

absl::StatusOr<std::string> ApplyMerge(const MergePlan& plan, pfs::Upload* upload) {
  if (plan.clear) RETURN_IF_ERROR(upload->Delete("/"));
  for (const auto& path : plan.deletes) {
    absl::Status s = upload->Delete(path);
    if (!s.ok() && s.code() != absl::StatusCode::kNotFound) return std::string(s.message());
  }
  for (const auto& [path, chunks] : plan.puts) {
    absl::Status s = upload->PutChunks(path, chunks);
    if (!s.ok()) return absl::StrCat("merging the datums' outputs: ", s.message());
  }
  RETURN_IF_ERROR(upload->Close().status());
  return std::string();
}

}  // namespace tusk::dispatcher
