// Listings: ListObjects (V1 and V2), ListObjectVersions over a branch's
// history, and the diff objects REF/.tusk/diff/FROM.jsonl.

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "pfs/refs.h"
#include "s3gw/gateway_internal.h"
#include "s3gw/xml.h"

namespace tusk::s3gw {
namespace {

constexpr char kDiffDir[] = ".tusk/diff/";

// One entry of a listing, in S3's key order.
struct Item {
  std::string key;
  bool is_prefix = false;  // a CommonPrefix
  uint64_t size = 0;
  std::string etag;
  absl::Time modified;
};

// Whether a listing that returned `after` last has passed `key`.
bool PassedMarker(const std::string& key, const std::string& after, const std::string& delimiter) {
  if (after.empty()) return false;
  if (key <= after) return true;
  // A common prefix returned last: everything under it is done too.
  return !delimiter.empty() && absl::EndsWith(after, delimiter) && absl::StartsWith(key, after);
}

// Keys in S3 order under one commit of one repo: `key_prefix` (the ref and
// '/' in lakeFS style, "" in Pachyderm style) joined to each path.
class TreeLister {
 public:
  // `fn` returns false to stop.
  using Fn = std::function<bool(Item)>;

  TreeLister(pfs::Pfs* pfs, std::string repo, std::string commit, absl::Time modified,
             std::string key_prefix, std::string path_prefix, std::string delimiter,
             std::string after)
      : pfs_(pfs),
        repo_(std::move(repo)),
        commit_(std::move(commit)),
        modified_(modified),
        key_prefix_(std::move(key_prefix)),
        path_prefix_(std::move(path_prefix)),
        delimiter_(std::move(delimiter)),
        after_(std::move(after)) {}

  // Lists; returns false if `fn` stopped it.
  absl::StatusOr<bool> Run(const Fn& fn) {
    // Start at the deepest directory the prefix names.
    std::string dir = path_prefix_.substr(0, path_prefix_.rfind('/') + 1);
    return Dir(dir, fn);
  }

 private:
  // A key the listing already passed (at or before the marker).
  bool Passed(const std::string& key) const { return PassedMarker(key, after_, delimiter_); }

  bool EmitGrouped(Item item, const Fn& fn) {
    // Any delimiter but '/' (which Dir handles by not descending): group
    // keys that share the part up to the delimiter after the prefix.
    if (!delimiter_.empty() && delimiter_ != "/") {
      std::string rest = item.key.substr(key_prefix_.size() + path_prefix_.size());
      size_t d = rest.find(delimiter_);
      if (d != std::string::npos) {
        std::string cp =
            item.key.substr(0, key_prefix_.size() + path_prefix_.size() + d + delimiter_.size());
        if (cp == last_prefix_) return true;
        last_prefix_ = cp;
        if (Passed(cp)) return true;
        Item p;
        p.key = cp;
        p.is_prefix = true;
        return fn(std::move(p));
      }
    }
    if (Passed(item.key)) return true;
    return fn(std::move(item));
  }

  absl::StatusOr<bool> Dir(const std::string& dir, const Fn& fn) {
    std::vector<pfs::FileInfo> children;
    absl::Status st = pfs_->ListFile(repo_, commit_, "/" + dir, [&](const pfs::FileInfo& f) {
      children.push_back(f);
      return absl::OkStatus();
    });
    if (absl::IsNotFound(st)) return true;  // nothing there
    RETURN_IF_ERROR(st);
    // A file "a.txt" comes before the keys "a/..." of a directory "a": sort
    // by the name a key would have.
    std::vector<std::pair<std::string, const pfs::FileInfo*>> order;
    order.reserve(children.size());
    for (const auto& c : children) {
      if (c.type() == pfs::v1::FILE && c.path() == "/" + dir.substr(0, dir.size() - 1)) {
        continue;  // ListFile of a file path returns the file itself
      }
      std::string name = c.path().substr(c.path().rfind('/') + 1);
      order.emplace_back(dir + name + (c.type() == pfs::v1::DIR ? "/" : ""), &c);
    }
    std::sort(order.begin(), order.end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
    for (const auto& [rel, info] : order) {
      const std::string key = key_prefix_ + rel;
      const bool is_dir = info->type() == pfs::v1::DIR;
      if (is_dir) {
        if (absl::StartsWith(path_prefix_, rel) && path_prefix_ != rel) {
          ASSIGN_OR_RETURN(bool more, Dir(rel, fn));  // the prefix goes deeper
          if (!more) return false;
          continue;
        }
        if (path_prefix_ == rel || absl::StartsWith(rel, path_prefix_)) {
          if (delimiter_ == "/") {
            if (Passed(key)) continue;
            Item p;
            p.key = key;
            p.is_prefix = true;
            if (!fn(std::move(p))) return false;
            continue;
          }
          // Everything under it is listed; skip it if the marker is past it.
          if (!after_.empty() && key < after_ && !absl::StartsWith(after_, key)) continue;
          ASSIGN_OR_RETURN(bool more, Dir(rel, fn));
          if (!more) return false;
        }
        continue;
      }
      if (!absl::StartsWith(rel, path_prefix_)) continue;
      Item item;
      item.key = key;
      item.size = info->size_bytes();
      item.etag = Etag(info->hash(), info->chunk_count());
      item.modified = modified_;
      if (!EmitGrouped(std::move(item), fn)) return false;
    }
    return true;
  }

  pfs::Pfs* const pfs_;
  const std::string repo_;
  const std::string commit_;
  const absl::Time modified_;
  const std::string key_prefix_;
  const std::string path_prefix_;
  const std::string delimiter_;
  const std::string after_;
  std::string last_prefix_;
};

// Lists `files` (relative path -> item, in key order) as a listing under
// `key_prefix` with `path_prefix`, `delimiter` and marker `after` would;
// returns false if `fn` stopped it.
bool EmitSorted(const std::map<std::string, Item>& files, const std::string& key_prefix,
                const std::string& path_prefix, const std::string& delimiter,
                const std::string& after, const std::function<bool(Item)>& fn) {
  std::string last_prefix;
  for (const auto& [rel, file] : files) {
    if (!absl::StartsWith(rel, path_prefix)) continue;
    if (!delimiter.empty()) {
      size_t d = rel.find(delimiter, path_prefix.size());
      if (d != std::string::npos) {
        std::string cp = key_prefix + rel.substr(0, d + delimiter.size());
        if (cp == last_prefix) continue;
        last_prefix = cp;
        if (PassedMarker(cp, after, delimiter)) continue;
        Item p;
        p.key = cp;
        p.is_prefix = true;
        if (!fn(std::move(p))) return false;
        continue;
      }
    }
    Item item = file;
    item.key = key_prefix + rel;
    if (PassedMarker(item.key, after, delimiter)) continue;
    if (!fn(std::move(item))) return false;
  }
  return true;
}

std::string Encode(const std::string& s, bool url) { return url ? UrlEncodeKey(s) : XmlEscape(s); }

std::string OwnerXml() { return "<Owner><ID>tusk</ID><DisplayName>tusk</DisplayName></Owner>"; }

}  // namespace

HttpResponse Gateway::Impl::ListObjects(const S3Call& call) {
  auto target = Resolve(call, false);
  if (!target.ok()) return ErrorResponse(call, target.status());
  const RepoAddress& a = target->address;
  const bool v2 = call.Query("list-type") == "2";
  const std::string prefix = call.Query("prefix");
  const std::string delimiter = call.Query("delimiter");
  const bool url = call.Query("encoding-type") == "url";
  if (call.Has("encoding-type") && !url) {
    return ErrorResponse(call, S3Error(absl::StatusCode::kInvalidArgument, "InvalidArgument",
                                       "encoding-type must be url"));
  }
  int max_keys = 1000;
  if (call.Has("max-keys")) {
    if (!absl::SimpleAtoi(call.Query("max-keys"), &max_keys) || max_keys < 0) {
      return ErrorResponse(call, S3Error(absl::StatusCode::kInvalidArgument, "InvalidArgument",
                                         "max-keys must be a number from 0"));
    }
    max_keys = std::min(max_keys, 1000);
  }
  std::string after;
  std::string token;
  if (v2) {
    after = call.Query("start-after");
    if (call.Has("continuation-token")) {
      token = call.Query("continuation-token");
      std::string decoded;
      if (!absl::WebSafeBase64Unescape(token, &decoded)) {
        return ErrorResponse(call, S3Error(absl::StatusCode::kInvalidArgument, "InvalidArgument",
                                           "the continuation token is not valid"));
      }
      after = std::max(after, decoded);
    }
  } else {
    after = call.Query("marker");
  }

  // What to walk: one ref (Pachyderm style, or a lakeFS prefix naming one),
  // or the branches a lakeFS prefix without '/' could be.
  struct Walk {
    std::string ref;
    std::string key_prefix;
    std::string path_prefix;
  };
  std::vector<Walk> walks;
  std::vector<std::string> ref_prefixes;  // lakeFS, delimiter '/': branches as CommonPrefixes
  if (a.pachyderm_style) {
    walks.push_back({a.ref, "", prefix});
  } else if (size_t slash = prefix.find('/'); slash != std::string::npos) {
    walks.push_back(
        {prefix.substr(0, slash), prefix.substr(0, slash + 1), prefix.substr(slash + 1)});
  } else {
    auto branches = pfs_->ListBranch(a.repo);
    if (!branches.ok()) return ErrorResponse(call, branches.status());
    std::vector<std::string> names;
    for (const auto& b : *branches) {
      if (absl::StartsWith(b.name(), prefix) && !b.head().empty()) names.push_back(b.name() + "/");
    }
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      if (delimiter == "/") {
        ref_prefixes.push_back(n);
      } else {
        walks.push_back({n.substr(0, n.size() - 1), n, ""});
      }
    }
  }

  std::vector<Item> items;
  const size_t want = static_cast<size_t>(max_keys) + 1;  // one more tells whether it is truncated
  for (const std::string& p : ref_prefixes) {
    if (items.size() >= want) break;
    if (!after.empty() && p <= after) continue;
    Item item;
    item.key = p;
    item.is_prefix = true;
    items.push_back(std::move(item));
  }
  for (const Walk& w : walks) {
    if (items.size() >= want) break;
    // A branch whose keys all come before the marker: nothing to walk.
    if (!w.key_prefix.empty() && w.key_prefix < after && !absl::StartsWith(after, w.key_prefix)) {
      continue;
    }
    auto commit = pfs_->InspectCommit(a.repo, w.ref);
    if (!commit.ok() && !absl::IsNotFound(commit.status()) &&
        !absl::IsInvalidArgument(commit.status())) {
      return ErrorResponse(call, commit.status());
    }
    const bool has_head =
        commit.ok() && (commit->state() == pfs::v1::FINISHED || commit->has_finished());
    auto collect = [&](Item item) {
      items.push_back(std::move(item));
      return items.size() < want;
    };
    // What the branch's open commit staged beneath the prefix's directory.
    std::vector<pfs::StagedChange> staged;
    if (const std::string open = OpenCommitOf(a.repo, w.ref); !open.empty()) {
      const std::string dir = w.path_prefix.substr(0, w.path_prefix.rfind('/') + 1);
      absl::Status st =
          pfs_->ListStagedChanges(a.repo, open, "/" + dir, [&](const pfs::StagedChange& c) {
            staged.push_back(c);
            return absl::OkStatus();
          });
      if (!st.ok() && !absl::IsFailedPrecondition(st) && !absl::IsNotFound(st)) {
        return ErrorResponse(call, st);
      }
    }
    if (staged.empty()) {
      if (!has_head) continue;  // no such ref, or nothing finished on it yet
      TreeLister lister(pfs_, a.repo, commit->id(), CommitTime(*commit), w.key_prefix,
                        w.path_prefix, delimiter, after);
      auto run = lister.Run(collect);
      if (!run.ok()) return ErrorResponse(call, run.status());
      continue;
    }
    // The head's files under the prefix with the staged changes over them,
    // listed from memory (bounded).
    std::map<std::string, Item> files;
    bool too_many = false;
    if (has_head) {
      TreeLister all(pfs_, a.repo, commit->id(), CommitTime(*commit), "", w.path_prefix, "", "");
      auto run = all.Run([&](Item item) {
        if (files.size() >= options_.max_versions_scan) {
          too_many = true;
          return false;
        }
        std::string rel = item.key;
        files.emplace(std::move(rel), std::move(item));
        return true;
      });
      if (!run.ok()) return ErrorResponse(call, run.status());
    }
    if (too_many) {
      return ErrorResponse(call, S3Error(absl::StatusCode::kResourceExhausted, "SlowDown",
                                         absl::StrCat("more than ", options_.max_versions_scan,
                                                      " objects under the prefix of a branch with "
                                                      "an open commit")));
    }
    const absl::Time now = absl::Now();
    for (const auto& c : staged) {
      std::string rel = c.path.substr(1);
      if (c.deleted) {
        files.erase(rel);
        const std::string below = rel + "/";
        for (auto it = files.lower_bound(below);
             it != files.end() && absl::StartsWith(it->first, below);) {
          it = files.erase(it);
        }
        continue;
      }
      Item item;
      item.key = rel;
      item.size = c.file.size_bytes();
      item.etag = Etag(c.file.hash(), c.file.chunk_count());
      item.modified = now;
      files[rel] = std::move(item);
    }
    EmitSorted(files, w.key_prefix, w.path_prefix, delimiter, after, collect);
  }
  const bool truncated = items.size() > static_cast<size_t>(max_keys);
  if (truncated) items.resize(max_keys);

  std::string contents;
  std::string prefixes;
  for (const Item& i : items) {
    if (i.is_prefix) {
      absl::StrAppend(&prefixes, "<CommonPrefixes><Prefix>", Encode(i.key, url),
                      "</Prefix></CommonPrefixes>");
    } else {
      absl::StrAppend(&contents, "<Contents><Key>", Encode(i.key, url), "</Key><LastModified>",
                      IsoTime(i.modified), "</LastModified><ETag>", XmlEscape(QuotedEtag(i.etag)),
                      "</ETag><Size>", i.size, "</Size>",
                      (!v2 || call.Query("fetch-owner") == "true") ? OwnerXml() : "",
                      "<StorageClass>STANDARD</StorageClass></Contents>");
    }
  }
  std::string body =
      absl::StrCat("<ListBucketResult xmlns=\"", kS3Xmlns, "\"><Name>", XmlEscape(call.bucket),
                   "</Name><Prefix>", Encode(prefix, url), "</Prefix>");
  const std::string last = items.empty() ? "" : items.back().key;
  if (v2) {
    absl::StrAppend(&body, "<KeyCount>", items.size(), "</KeyCount>");
    if (call.Has("start-after")) {
      absl::StrAppend(&body, "<StartAfter>", Encode(call.Query("start-after"), url),
                      "</StartAfter>");
    }
    if (!token.empty()) {
      absl::StrAppend(&body, "<ContinuationToken>", XmlEscape(token), "</ContinuationToken>");
    }
    if (truncated) {
      absl::StrAppend(&body, "<NextContinuationToken>", absl::WebSafeBase64Escape(last),
                      "</NextContinuationToken>");
    }
  } else {
    absl::StrAppend(&body, "<Marker>", Encode(after, url), "</Marker>");
    if (truncated && !delimiter.empty()) {
      absl::StrAppend(&body, "<NextMarker>", Encode(last, url), "</NextMarker>");
    }
  }
  absl::StrAppend(&body, "<MaxKeys>", max_keys, "</MaxKeys>");
  if (!delimiter.empty())
    absl::StrAppend(&body, "<Delimiter>", Encode(delimiter, url), "</Delimiter>");
  if (url) absl::StrAppend(&body, "<EncodingType>url</EncodingType>");
  absl::StrAppend(&body, "<IsTruncated>", truncated ? "true" : "false", "</IsTruncated>", contents,
                  prefixes, "</ListBucketResult>");
  return XmlResponse(200, std::move(body));
}

HttpResponse Gateway::Impl::ListObjectVersions(const S3Call& call) {
  auto target = Resolve(call, false);
  if (!target.ok()) return ErrorResponse(call, target.status());
  const RepoAddress& a = target->address;
  const std::string prefix = call.Query("prefix");
  const std::string delimiter = call.Query("delimiter");
  const bool url = call.Query("encoding-type") == "url";
  int max_keys = 1000;
  if (call.Has("max-keys") &&
      (!absl::SimpleAtoi(call.Query("max-keys"), &max_keys) || max_keys < 0)) {
    return ErrorResponse(call, S3Error(absl::StatusCode::kInvalidArgument, "InvalidArgument",
                                       "max-keys must be a number from 0"));
  }
  max_keys = std::min(max_keys, 1000);
  const std::string key_marker = call.Query("key-marker");
  const std::string version_marker = call.Query("version-id-marker");

  // The branches (refs) whose history to read.
  std::vector<std::pair<std::string, std::string>> refs;  // ref, key prefix
  std::string path_prefix;
  if (a.pachyderm_style) {
    refs.push_back({a.ref, ""});
    path_prefix = prefix;
  } else if (size_t slash = prefix.find('/'); slash != std::string::npos) {
    refs.push_back({prefix.substr(0, slash), prefix.substr(0, slash + 1)});
    path_prefix = prefix.substr(slash + 1);
  } else {
    auto branches = pfs_->ListBranch(a.repo);
    if (!branches.ok()) return ErrorResponse(call, branches.status());
    for (const auto& b : *branches) {
      if (absl::StartsWith(b.name(), prefix) && !b.head().empty()) {
        refs.push_back({b.name(), b.name() + "/"});
      }
    }
  }
  struct Version {
    std::string id;
    std::string path;
    bool deleted = false;
    uint64_t size = 0;
    std::string hash;
    absl::Time modified;
  };
  // key -> versions, newest first.
  std::map<std::string, std::vector<Version>> versions;
  size_t scanned = 0;
  bool cut = false;
  for (const auto& [ref, key_prefix] : refs) {
    std::vector<pfs::CommitInfo> commits;
    absl::Status st = pfs_->ListCommit(a.repo, ref, 0, [&](const pfs::CommitInfo& c) {
      if (c.state() == pfs::v1::FINISHED || c.has_finished()) commits.push_back(c);
      return absl::OkStatus();
    });
    if (absl::IsNotFound(st) || absl::IsInvalidArgument(st)) continue;
    if (!st.ok()) return ErrorResponse(call, st);
    for (const auto& c : commits) {
      if (cut) break;
      st = pfs_->DiffCommit(a.repo, c.id(), "", [&](const pfs::FileDiff& d) {
        std::string rel = d.path().substr(1);
        if (!absl::StartsWith(rel, path_prefix)) return absl::OkStatus();
        if (++scanned > options_.max_versions_scan) {
          cut = true;
          return absl::CancelledError("enough");
        }
        Version v;
        v.id = c.id();
        v.path = d.path();
        v.deleted = d.change() == pfs::FileDiff::DELETED;
        v.size = d.new_size();
        v.hash = d.new_hash();
        v.modified = CommitTime(c);
        versions[key_prefix + rel].push_back(std::move(v));
        return absl::OkStatus();
      });
      if (!st.ok() && !absl::IsCancelled(st)) return ErrorResponse(call, st);
    }
  }
  if (cut) {
    LOG(WARNING) << "s3 gateway: ListObjectVersions on " << call.bucket << " stopped after "
                 << options_.max_versions_scan << " versions; older ones are not listed";
  }

  std::string body;
  std::string prefixes;
  int count = 0;
  bool truncated = false;
  std::string next_key;
  std::string next_version;
  std::string last_prefix;
  for (const auto& [key, list] : versions) {
    if (!key_marker.empty() && key < key_marker) continue;
    if (!delimiter.empty()) {
      size_t d = key.find(delimiter, prefix.size());
      if (d != std::string::npos) {
        std::string cp = key.substr(0, d + delimiter.size());
        if (cp == last_prefix || (!key_marker.empty() && cp <= key_marker)) continue;
        if (count == max_keys) {
          truncated = true;
          break;
        }
        last_prefix = cp;
        absl::StrAppend(&prefixes, "<CommonPrefixes><Prefix>", Encode(cp, url),
                        "</Prefix></CommonPrefixes>");
        ++count;
        next_key = cp;
        next_version.clear();
        continue;
      }
    }
    bool skipping = key == key_marker && !version_marker.empty();
    if (key == key_marker && version_marker.empty()) continue;  // the whole key was listed
    for (size_t i = 0; i < list.size(); ++i) {
      const Version& v = list[i];
      if (skipping) {
        if (v.id == version_marker) skipping = false;
        continue;
      }
      if (count == max_keys) {
        truncated = true;
        break;
      }
      const char* latest = i == 0 ? "true" : "false";
      if (v.deleted) {
        absl::StrAppend(&body, "<DeleteMarker><Key>", Encode(key, url), "</Key><VersionId>", v.id,
                        "</VersionId><IsLatest>", latest, "</IsLatest><LastModified>",
                        IsoTime(v.modified), "</LastModified>", OwnerXml(), "</DeleteMarker>");
      } else {
        // The chunk count of the ETag is in the file's entry, not the diff.
        auto file = pfs_->InspectFile(a.repo, v.id, v.path);
        const std::string etag = Etag(v.hash, file.ok() ? file->chunk_count() : 0);
        absl::StrAppend(&body, "<Version><Key>", Encode(key, url), "</Key><VersionId>", v.id,
                        "</VersionId><IsLatest>", latest, "</IsLatest><LastModified>",
                        IsoTime(v.modified), "</LastModified><ETag>", XmlEscape(QuotedEtag(etag)),
                        "</ETag><Size>", v.size, "</Size><StorageClass>STANDARD</StorageClass>",
                        OwnerXml(), "</Version>");
      }
      ++count;
      next_key = key;
      next_version = v.id;
    }
    if (truncated) break;
  }
  std::string out = absl::StrCat("<ListVersionsResult xmlns=\"", kS3Xmlns, "\"><Name>",
                                 XmlEscape(call.bucket), "</Name><Prefix>", Encode(prefix, url),
                                 "</Prefix><KeyMarker>", Encode(key_marker, url),
                                 "</KeyMarker><VersionIdMarker>", XmlEscape(version_marker),
                                 "</VersionIdMarker><MaxKeys>", max_keys, "</MaxKeys>");
  if (!delimiter.empty())
    absl::StrAppend(&out, "<Delimiter>", Encode(delimiter, url), "</Delimiter>");
  absl::StrAppend(&out, "<IsTruncated>", truncated ? "true" : "false", "</IsTruncated>");
  if (truncated) {
    absl::StrAppend(&out, "<NextKeyMarker>", Encode(next_key, url), "</NextKeyMarker>");
    if (!next_version.empty()) {
      absl::StrAppend(&out, "<NextVersionIdMarker>", next_version, "</NextVersionIdMarker>");
    }
  }
  if (url) absl::StrAppend(&out, "<EncodingType>url</EncodingType>");
  absl::StrAppend(&out, body, prefixes, "</ListVersionsResult>");
  return XmlResponse(200, std::move(out));
}

std::optional<absl::StatusOr<std::string>> Gateway::Impl::DiffObject(const Target& target) {
  const RepoAddress& a = target.address;
  absl::string_view rest = a.path;
  if (!absl::ConsumePrefix(&rest, kDiffDir) || !absl::ConsumeSuffix(&rest, ".jsonl")) {
    return std::nullopt;
  }
  std::string from(rest);
  if (from.empty() || absl::StrContains(from, '/')) return std::nullopt;
  if (!pfs::ParseRef(from).ok()) {
    return S3Error(absl::StatusCode::kInvalidArgument, "InvalidArgument",
                   absl::StrCat("'", from, "' in ", kDiffDir, from, ".jsonl is not a ref"));
  }
  std::string out;
  size_t lines = 0;
  absl::Status st = pfs_->DiffCommit(a.repo, a.ref, from, [&](const pfs::FileDiff& d) {
    if (++lines > options_.max_versions_scan) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the diff has more than ", options_.max_versions_scan, " changed paths"));
    }
    nlohmann::json j;
    j["path"] = d.path();
    j["change"] = d.change() == pfs::FileDiff::ADDED     ? "added"
                  : d.change() == pfs::FileDiff::DELETED ? "deleted"
                                                         : "modified";
    if (d.change() != pfs::FileDiff::ADDED) {
      j["old_size"] = d.old_size();
      j["old_hash"] = d.old_hash();
    }
    if (d.change() != pfs::FileDiff::DELETED) {
      j["new_size"] = d.new_size();
      j["new_hash"] = d.new_hash();
    }
    absl::StrAppend(&out, j.dump(), "\n");
    return absl::OkStatus();
  });
  if (!st.ok()) {
    if (absl::IsNotFound(st)) {
      return S3Error(absl::StatusCode::kNotFound, "NoSuchKey", std::string(st.message()));
    }
    return st;
  }
  return out;
}

}  // namespace tusk::s3gw
