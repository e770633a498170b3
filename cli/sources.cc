// Kafka sources: create, list, inspect, delete.

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/command.h"
#include "cli/command_base.h"
#include "cli/output.h"
#include "cli/spec_file.h"
#include "common/flag_values.h"
#include "common/status.h"
#include "common/version.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace tusk::cli {
namespace {

class SourceCommands : public CommandBase {
 public:
  using CommandBase::CommandBase;

  absl::StatusOr<iv1::SourceSpec> SourceSpecFromArgs() {
    iv1::SourceSpec spec;
    if (args_.Has("-f")) {
      std::string path = args_.Get("-f");
      ASSIGN_OR_RETURN(std::string text, ReadSpecText(path));
      ASSIGN_OR_RETURN(auto docs, SpecDocuments(text, path));
      if (docs.size() != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": holds ", docs.size(), " documents; a source spec is one"));
      }
      RETURN_IF_ERROR(ParseSpecJson(docs[0], path, &spec));
    }
    if (!args_.positional.empty()) spec.set_name(args_.positional[0]);
    if (args_.Has("--kafka")) spec.mutable_kafka()->set_brokers(args_.Get("--kafka"));
    if (args_.values.count("--topic")) {
      spec.mutable_kafka()->clear_topics();
      for (const auto& t : args_.values.at("--topic")) spec.mutable_kafka()->add_topics(t);
    }
    if (args_.Has("--repo")) spec.set_repo(args_.Get("--repo"));
    if (args_.Has("--branch")) spec.set_branch(args_.Get("--branch"));
    if (args_.Has("--max-records")) {
      uint64_t n = 0;
      if (!absl::SimpleAtoi(args_.Get("--max-records"), &n) || n == 0) {
        return absl::InvalidArgumentError("--max-records needs a positive number");
      }
      spec.set_max_records(n);
    }
    for (const auto& [flag, setter] :
         std::vector<std::pair<std::string, void (iv1::SourceSpec::*)(uint64_t)>>{
             {"--max-bytes", &iv1::SourceSpec::set_max_bytes},
             {"--max-record-bytes", &iv1::SourceSpec::set_max_record_bytes}}) {
      if (!args_.Has(flag)) continue;
      auto n = ParseBytes(flag, args_.Get(flag));
      if (!n.ok()) return n.status();
      (spec.*setter)(*n);
    }
    if (args_.Has("--max-latency")) {
      absl::Duration d;
      if (!absl::ParseDuration(args_.Get("--max-latency"), &d) || d <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--max-latency '", args_.Get("--max-latency"), "' is not a duration (e.g. 50ms, 2s)"));
      }
      spec.set_max_latency_ms(std::max<uint64_t>(1, absl::ToInt64Milliseconds(d)));
    }
    if (args_.Has("--start")) {
      std::string s = args_.Get("--start");
      if (s == "earliest") {
        spec.mutable_kafka()->set_start(iv1::EARLIEST);
      } else if (s == "latest") {
        spec.mutable_kafka()->set_start(iv1::LATEST);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--start must be earliest or latest, not '", s, "'"));
      }
    }
    if (args_.Has("--layout")) {
      std::string s = args_.Get("--layout");
      if (s == "partition") {
        spec.set_layout(iv1::PARTITION);
      } else if (s == "hour") {
        spec.set_layout(iv1::HOUR);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--layout must be partition or hour, not '", s, "'"));
      }
    }
    if (args_.Has("--value-format")) {
      std::string s = args_.Get("--value-format");
      if (s == "raw") {
        spec.set_value_format(iv1::RAW);
      } else if (s == "json") {
        spec.set_value_format(iv1::JSON);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--value-format must be raw or json, not '", s, "'"));
      }
    }
    return spec;
  }

  int CreateSource() {
    if (args_.positional.size() > 1)
      return UsageError("unexpected argument '" + args_.positional[1] + "'");
    if (args_.positional.empty() && !args_.Has("-f")) return UsageError("missing source name");
    auto spec = SourceSpecFromArgs();
    if (!spec.ok()) return Fail(spec.status());
    iv1::CreateSourceRequest req;
    *req.mutable_spec() = *spec;
    req.set_update(args_.Has("--update"));
    return CallOn(sources_, &iv1::Sources::Stub::CreateSource, req, [&](const iv1::SourceInfo& s) {
      std::cout << (req.update() ? "updated" : "created") << " source " << s.spec().name() << ": "
                << absl::StrJoin(s.spec().kafka().topics(), ",") << " -> " << s.spec().repo() << "@"
                << s.spec().branch() << "\nrun it with: tusk-ingest --source " << s.spec().name()
                << "\n";
    });
  }

  static std::string SourceLag(const iv1::SourceInfo& s) {
    int64_t lag = 0;
    bool known = false;
    for (const auto& p : s.partitions()) {
      if (p.high_watermark() < 0) continue;
      lag += p.lag();
      known = true;
    }
    return known ? absl::StrCat(lag) : "-";
  }

  int ListSource() {
    if (!NeedPositional(0, "")) return kExitUsage;
    iv1::ListSourceResponse resp;
    auto ctx = Ctx();
    grpc::Status s = sources_->ListSource(ctx.get(), iv1::ListSourceRequest(), &resp);
    if (!s.ok()) return Fail(s);
    if (json_) {
      for (const auto& src : resp.sources()) PrintJson(src);
      return kExitOk;
    }
    Table t({"NAME", "TOPICS", "REPO@BRANCH", "MEMBERS", "LAG", "RECORDS/S", "LAST COMMIT"});
    for (const auto& src : resp.sources()) {
      t.Add({src.spec().name(), absl::StrJoin(src.spec().kafka().topics(), ","),
             src.spec().repo() + "@" + src.spec().branch(), absl::StrCat(src.members_size()),
             SourceLag(src), absl::StrFormat("%.0f", src.records_per_s()),
             Time(src.last_commit_time())});
    }
    t.Print();
    return kExitOk;
  }

  int InspectSource() {
    if (!NeedPositional(1, "source name")) return kExitUsage;
    iv1::InspectSourceRequest req;
    req.set_name(args_.positional[0]);
    return CallOn(sources_, &iv1::Sources::Stub::InspectSource, req, [&](const iv1::SourceInfo& s) {
      const auto& spec = s.spec();
      std::cout << "Name: " << spec.name() << "\nKafka: " << spec.kafka().brokers()
                << "\nTopics: " << absl::StrJoin(spec.kafka().topics(), ", ")
                << "\nTarget: " << spec.repo() << "@" << spec.branch()
                << "\nCommit policy: " << spec.max_records() << " records, "
                << HumanBytes(spec.max_bytes()) << ", " << spec.max_latency_ms()
                << " ms (first reached)"
                << "\nStart: " << iv1::StartPosition_Name(spec.kafka().start())
                << "\nLayout: " << iv1::Layout_Name(spec.layout())
                << "\nCreated: " << Time(s.created()) << "\nLast commit: " << Short(s.last_commit())
                << " (" << Time(s.last_commit_time())
                << ")\nRate: " << absl::StrFormat("%.0f", s.records_per_s()) << " records/s\n\n";
      Table parts({"TOPIC", "PARTITION", "COMMITTED", "HIGH WATERMARK", "LAG", "LOST", "LAST GAP",
                   "MEMBER"});
      for (const auto& p : s.partitions()) {
        parts.Add({p.topic(), absl::StrCat(p.partition()),
                   p.committed_offset() < 0 ? "-" : absl::StrCat(p.committed_offset()),
                   p.high_watermark() < 0 ? "-" : absl::StrCat(p.high_watermark()),
                   p.high_watermark() < 0 ? "-" : absl::StrCat(p.lag()),
                   absl::StrCat(p.lost_records()), p.last_gap().empty() ? "-" : p.last_gap(),
                   p.member().empty() ? "-" : p.member()});
      }
      parts.Print();
      if (s.members_size() > 0) {
        std::cout << "\n";
        Table members(
            {"MEMBER", "HOST", "STATE", "RECORDS", "RECORDS/S", "DEAD LETTERS", "LAST SEEN"});
        for (const auto& m : s.members()) {
          members.Add({m.id(), m.host(), m.state(), absl::StrCat(m.records()),
                       absl::StrFormat("%.0f", m.records_per_s()), absl::StrCat(m.dead_letters()),
                       Time(m.last_seen())});
        }
        members.Print();
      }
    });
  }

  int DeleteSource() {
    if (!NeedPositional(1, "source name")) return kExitUsage;
    iv1::DeleteSourceRequest req;
    req.set_name(args_.positional[0]);
    return CallOn(sources_, &iv1::Sources::Stub::DeleteSource, req,
                  [&](const iv1::DeleteSourceResponse&) {
                    std::cout << "deleted source " << req.name() << "\n";
                  });
  }

  // --- pipelines ----------------------------------------------------------
};

}  // namespace

void AddSourceCommands(CommandTable* table) {
  table->Add(
      {"create source",
       "Ingest (Kafka topics into micro-commits; run 'tusk-ingest --source NAME')",
       "create source NAME --kafka BROKERS --topic T [--topic T2 ...] --repo R [--branch B]",
       "    [--max-records N] [--max-bytes B] [--max-latency D] [--start earliest|latest]\n"
       "    [--layout partition|hour] [--max-record-bytes B] [--value-format raw|json] [--update]\n"
       "tusk create source [NAME] -f SPEC.yaml|SPEC.json [--update]\n"
       "  Stores a Kafka source in tuskd; 'tusk-ingest --source NAME' runs it (the Kafka\n"
       "  consumer group is NAME). A micro-commit closes at the first of --max-records\n"
       "  (default 100000), --max-bytes (default 16MiB) and --max-latency (default 1s).\n"
       "  --start: where a partition begins when the branch has no offset for it yet.\n"
       "  Records over --max-record-bytes (default 1MiB), and with --value-format json\n"
       "  values that are not JSON, go to /_dead_letter/ in the repo with the reason.\n"
       "  Sizes take K, M, G (powers of 1024); durations take ms, s, m. The repo is\n"
       "  created if missing. The spec file is a SourceSpec in YAML or JSON, with the\n"
       "  field names of --json output (max_latency_ms: 50, kafka: {topics: [t]}).\n",
       0,
       1,
       {{"-f", true, false, "--file"},
        {"--update", false, false},
        {"--kafka", true, false},
        {"--topic", true, true},
        {"--repo", true, false},
        {"--branch", true, false},
        {"--max-records", true, false},
        {"--max-bytes", true, false},
        {"--max-latency", true, false},
        {"--start", true, false},
        {"--layout", true, false},
        {"--max-record-bytes", true, false},
        {"--value-format", true, false}},
       Run<SourceCommands, &SourceCommands::CreateSource>});
  table->Add({"list source",
              "Ingest (Kafka topics into micro-commits; run 'tusk-ingest --source NAME')",
              "list source",
              "  Sources with their repo, lag and ingest rate.\n",
              0,
              0,
              {},
              Run<SourceCommands, &SourceCommands::ListSource>});
  table->Add({"inspect source",
              "Ingest (Kafka topics into micro-commits; run 'tusk-ingest --source NAME')",
              "inspect source NAME",
              "  Per partition: the offset the branch head records, Kafka's high\n"
              "  watermark, lag and records lost to retention; the members running it.\n",
              1,
              1,
              {},
              Run<SourceCommands, &SourceCommands::InspectSource>});
  table->Add({"delete source",
              "Ingest (Kafka topics into micro-commits; run 'tusk-ingest --source NAME')",
              "delete source NAME",
              "  Stops ingest (members exit); the repo and its commits stay.\n",
              1,
              1,
              {},
              Run<SourceCommands, &SourceCommands::DeleteSource>});
}

}  // namespace tusk::cli
