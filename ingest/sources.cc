#include "ingest/sources.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/proto_util.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "ingest/format.h"
#include "pfs/keys.h"
#include "pfs/refs.h"

namespace tusk::ingest {

using google::protobuf::util::TimeUtil;
using v1::PartitionStatus;
using v1::ReportSourceRequest;
using v1::SourceInfo;
using v1::SourceSpec;

namespace {

using google::protobuf::util::TimeUtil;

constexpr absl::Duration kMemberTimeout = absl::Seconds(30);

absl::Status ValidateTopic(const std::string& t) {
  // Kafka's own rule: 1-249 of [a-zA-Z0-9._-], and not "." or "..".
  bool ok = !t.empty() && t.size() <= 249 && t != "." && t != "..";
  for (char c : t) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-');
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid Kafka topic '", t, "': use 1-249 letters, digits, '.', '_' or '-'"));
  }
  return absl::OkStatus();
}

// Checks a spec and fills in defaults.
}  // namespace

absl::Status NormalizeSourceSpec(SourceSpec* s) {
  auto named = [&](absl::Status st) {
    return st.ok() ? st : Annotate(st, absl::StrCat("source ", s->name()));
  };
  if (s->name().empty()) return absl::InvalidArgumentError("a source needs a name");
  // Source names follow repo names: they appear in logs, group ids and keys.
  if (auto st = pfs::ValidateRepoName(s->name()); !st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid source name '", s->name(), "': use letters, digits, '_' and '-'"));
  }
  if (s->kafka().brokers().empty())
    return named(absl::InvalidArgumentError("needs --kafka BROKERS"));
  if (s->kafka().topics().empty())
    return named(absl::InvalidArgumentError("needs at least one --topic"));
  std::set<std::string> seen;
  for (const auto& t : s->kafka().topics()) {
    RETURN_IF_ERROR(named(ValidateTopic(t)));
    if (!seen.insert(t).second) {
      return named(absl::InvalidArgumentError(absl::StrCat("topic ", t, " is listed twice")));
    }
  }
  if (s->repo().empty()) return named(absl::InvalidArgumentError("needs --repo"));
  RETURN_IF_ERROR(pfs::ValidateRepoName(s->repo()));
  if (s->branch().empty()) s->set_branch("master");
  RETURN_IF_ERROR(pfs::ValidateBranchName(s->branch()));
  if (s->max_records() == 0) s->set_max_records(100000);
  if (s->max_bytes() == 0) s->set_max_bytes(16 << 20);
  if (s->max_latency_ms() == 0) s->set_max_latency_ms(1000);
  if (s->max_record_bytes() == 0) s->set_max_record_bytes(1 << 20);
  if (s->kafka().start() == v1::START_POSITION_UNSPECIFIED)
    s->mutable_kafka()->set_start(v1::EARLIEST);
  if (s->layout() == v1::LAYOUT_UNSPECIFIED) s->set_layout(v1::PARTITION);
  if (s->value_format() == v1::VALUE_FORMAT_UNSPECIFIED) s->set_value_format(v1::RAW);
  if (s->max_bytes() > (1ull << 30)) {
    return named(
        absl::InvalidArgumentError("max_bytes is over 1 GiB: a micro-commit is held in memory"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<SourceInfo>> Sources::GetStored(const std::string& name) {
  ASSIGN_OR_RETURN(auto v, space_.Get(pfs::SourceKey(name)));
  if (!v) return std::optional<SourceInfo>();
  SourceInfo stored;
  if (!stored.ParseFromString(*v)) {
    return absl::DataLossError(absl::StrCat("the record of source ", name, " is corrupt"));
  }
  return std::optional<SourceInfo>(std::move(stored));
}

absl::StatusOr<SourceInfo> Sources::GetExisting(const std::string& name) {
  ASSIGN_OR_RETURN(auto stored, GetStored(name));
  if (!stored) return absl::NotFoundError(absl::StrCat("source ", name, " not found"));
  return *std::move(stored);
}

absl::StatusOr<SourceInfo> Sources::Info(SourceInfo info) {
  const SourceSpec& spec = info.spec();
  // Offsets, from the branch head: the truth.
  std::map<std::string, std::string> meta;
  auto head = pfs_->InspectCommit(spec.repo(), spec.branch());
  if (head.ok()) {
    info.set_last_commit(head->id());
    *info.mutable_last_commit_time() = head->finished();
    meta.insert(head->metadata().begin(), head->metadata().end());
  } else if (head.status().code() != absl::StatusCode::kNotFound) {
    return head.status();
  }
  // Partitions: every one the head knows of, plus every one a member reports.
  std::map<std::pair<std::string, int32_t>, PartitionStatus> parts;
  auto part = [&](const std::string& topic, int32_t p) -> PartitionStatus& {
    auto& ps = parts[{topic, p}];
    if (ps.topic().empty()) {
      ps.set_topic(topic);
      ps.set_partition(p);
      ps.set_committed_offset(-1);
      ps.set_high_watermark(-1);
    }
    return ps;
  };
  // ingest writes its offsets under the prefix tusk carries to child commits.
  std::string kafka_prefix = absl::StrCat(ingest::kCarriedPrefix, "kafka/");
  for (const auto& [k, value] : meta) {
    if (!absl::StartsWith(k, kafka_prefix)) continue;
    std::vector<std::string> f = absl::StrSplit(k.substr(kafka_prefix.size()), '/');
    int32_t p = 0;
    if (f.size() != 3 || !absl::SimpleAtoi(f[1], &p)) continue;
    bool ours = false;
    for (const auto& t : spec.kafka().topics()) ours = ours || t == f[0];
    if (!ours) continue;
    int64_t n = 0;
    if (f[2] == "last_gap") part(f[0], p).set_last_gap(value);
    if (!absl::SimpleAtoi(value, &n)) continue;
    if (f[2] == "next") part(f[0], p).set_committed_offset(n);
    if (f[2] == "lost") part(f[0], p).set_lost_records(static_cast<uint64_t>(n));
  }
  absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    auto& members = reports_[spec.name()];
    for (auto it = members.begin(); it != members.end();) {
      if (now - it->second.at > kMemberTimeout) {
        it = members.erase(it);
        continue;
      }
      const auto& r = it->second.report;
      *info.add_members() = r.member();
      info.set_records_per_s(info.records_per_s() + r.member().records_per_s());
      for (const auto& pr : r.partitions()) {
        auto& ps = part(pr.topic(), pr.partition());
        ps.set_high_watermark(pr.high_watermark());
        ps.set_member(r.member().id());
      }
      ++it;
    }
  }
  for (auto& [key, ps] : parts) {
    if (ps.high_watermark() >= 0) {
      int64_t from = std::max<int64_t>(ps.committed_offset(), 0);
      ps.set_lag(std::max<int64_t>(ps.high_watermark() - from, 0));
    }
    *info.add_partitions() = ps;
  }
  return info;
}

absl::StatusOr<SourceInfo> Sources::StoreSpec(const SourceSpec& spec, bool update) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto existing, GetStored(spec.name()));
  if (existing && !update) {
    return absl::AlreadyExistsError(
        absl::StrCat("source ", spec.name(), " already exists (update it with --update)"));
  }
  // Two sources feeding one topic into one branch would fight over its offsets.
  absl::Status clash;
  RETURN_IF_ERROR(space_.ScanPrefix(pfs::kSourceSpace, [&](absl::string_view, absl::string_view v) {
    SourceInfo other;
    if (!other.ParseFromString(std::string(v)) || other.spec().name() == spec.name()) return true;
    if (other.spec().repo() != spec.repo() || other.spec().branch() != spec.branch()) return true;
    for (const auto& t : other.spec().kafka().topics()) {
      for (const auto& mine : spec.kafka().topics()) {
        if (t != mine) continue;
        clash = absl::AlreadyExistsError(absl::StrCat("source ", other.spec().name(),
                                                      " already ingests topic ", t, " into ",
                                                      spec.repo(), "@", spec.branch()));
        return false;
      }
    }
    return true;
  }));
  RETURN_IF_ERROR(clash);
  auto repo = pfs_->InspectRepo(spec.repo());
  if (!repo.ok() && repo.status().code() == absl::StatusCode::kNotFound) {
    RETURN_IF_ERROR(
        pfs_->CreateRepo(spec.repo(), absl::StrCat("ingested from Kafka by source ", spec.name()))
            .status());
    LOG(INFO) << "created repo " << spec.repo() << " for source " << spec.name();
  } else if (!repo.ok()) {
    return repo.status();
  }
  SourceInfo stored;
  *stored.mutable_spec() = spec;
  *stored.mutable_created() = existing ? existing->created() : NowTimestamp();
  // Logged to the object store too: a source survives an index rebuild.
  RETURN_IF_ERROR(space_.PutRecord(pfs::SourceKey(spec.name()), stored.SerializeAsString()));
  LOG(INFO) << (existing ? "updated" : "created") << " source " << spec.name() << " -> "
            << spec.repo() << "@" << spec.branch();
  return stored;
}

absl::StatusOr<SourceInfo> Sources::Create(SourceSpec spec, bool update) {
  RETURN_IF_ERROR(NormalizeSourceSpec(&spec));
  ASSIGN_OR_RETURN(SourceInfo stored, StoreSpec(spec, update));
  return Info(std::move(stored));
}

absl::StatusOr<SourceInfo> Sources::Inspect(const std::string& name) {
  ASSIGN_OR_RETURN(SourceInfo stored, GetExisting(name));
  return Info(std::move(stored));
}

absl::StatusOr<std::vector<SourceInfo>> Sources::List() {
  std::vector<SourceInfo> all;
  absl::Status parse;
  RETURN_IF_ERROR(space_.ScanPrefix(pfs::kSourceSpace, [&](absl::string_view k,
                                                           absl::string_view v) {
    SourceInfo stored;
    if (!stored.ParseFromString(std::string(v))) {
      parse =
          absl::DataLossError(absl::StrCat("the record of source ", k.substr(1), " is corrupt"));
      return false;
    }
    all.push_back(std::move(stored));
    return true;
  }));
  RETURN_IF_ERROR(parse);
  std::vector<SourceInfo> out;
  for (auto& stored : all) {
    ASSIGN_OR_RETURN(SourceInfo info, Info(std::move(stored)));
    out.push_back(std::move(info));
  }
  return out;
}

absl::Status Sources::Delete(const std::string& name) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(GetExisting(name).status());
  RETURN_IF_ERROR(space_.DeleteRecord(pfs::SourceKey(name)));
  reports_.erase(name);
  // The repo and its commits stay: they are data, not configuration.
  LOG(INFO) << "deleted source " << name;
  return absl::OkStatus();
}

absl::StatusOr<SourceSpec> Sources::Report(const ReportSourceRequest& report) {
  ASSIGN_OR_RETURN(SourceInfo stored, GetExisting(report.name()));
  absl::MutexLock lock(&mu_);
  auto& r = reports_[report.name()][report.member().id()];
  r.report = report;
  *r.report.mutable_member()->mutable_last_seen() = NowTimestamp();
  r.at = absl::Now();
  return stored.spec();
}

}  // namespace tusk::ingest
