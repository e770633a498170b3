// Pipelines: create, update, list, inspect, delete, stop, start.

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
#include "cli/put_plan.h"
#include "cli/spec_file.h"
#include "common/status.h"
#include "common/version.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "http/url_reader.h"

namespace tusk::cli {
namespace {

class PipelineCommands : public CommandBase {
 public:
  using CommandBase::CommandBase;

  // The spec text at a URL (http, https, s3), up to a bound.
  absl::StatusOr<std::string> ReadSpecUrl(const std::string& url) {
    constexpr size_t kMaxSpec = 16 << 20;
    ASSIGN_OR_RETURN(auto reader, http::UrlReader::Open(url, S3OptionsFromArgs(args_)));
    std::string text;
    char buf[65536];
    for (;;) {
      ASSIGN_OR_RETURN(size_t n, reader->Read(buf, sizeof(buf)));
      if (n == 0) return text;
      text.append(buf, n);
      if (text.size() > kMaxSpec) {
        return absl::InvalidArgumentError(
            absl::StrCat("the spec at ", url, " is larger than ", kMaxSpec, " bytes"));
      }
    }
  }

  // Every pipeline in the spec file or URL (-f; YAML may hold several
  // documents, JSON several objects or an array).
  absl::StatusOr<std::vector<ppsv1::PipelineSpec>> PipelineSpecs() {
    std::string path = args_.Get("-f");
    std::string text;
    if (http::UrlReader::IsUrl(path)) {
      ASSIGN_OR_RETURN(text, ReadSpecUrl(path));
    } else {
      ASSIGN_OR_RETURN(text, ReadSpecText(path));
    }
    ASSIGN_OR_RETURN(auto docs, SpecDocuments(text, path));
    std::vector<ppsv1::PipelineSpec> out;
    for (const auto& doc : docs) {
      ppsv1::PipelineSpec spec;
      RETURN_IF_ERROR(ParseSpecJson(doc, path, &spec));
      out.push_back(std::move(spec));
    }
    return out;
  }

  int PutPipelines(bool update) {
    if (!NeedPositional(0, "")) return kExitUsage;
    if (!args_.Has("-f"))
      return UsageError("needs -f SPEC (a YAML or JSON pipeline spec; - for stdin)");
    auto specs = PipelineSpecs();
    if (!specs.ok()) return Fail(specs.status());
    for (const auto& spec : *specs) {
      ppsv1::CreatePipelineRequest req;
      *req.mutable_spec() = spec;
      // pachctl's spec fields update and reprocess do what the flags do.
      req.set_update(update || spec.update());
      req.set_reprocess(args_.Has("--reprocess") || spec.reprocess());
      int rc =
          CallOn(pps_, &ppsv1::Pps::Stub::CreatePipeline, req, [&](const ppsv1::PipelineInfo& p) {
            std::cout << (req.update() ? "updated" : "created") << " pipeline "
                      << p.spec().pipeline().name() << " (version " << p.version() << ")\n";
            for (const auto& w : p.warnings()) std::cerr << "tusk: warning: " << w << "\n";
          });
      if (rc != kExitOk) return rc;
    }
    return kExitOk;
  }

  int CreatePipeline() { return PutPipelines(false); }

  int UpdatePipeline() { return PutPipelines(true); }

  static std::string InputSummary(const ppsv1::Input& in) {
    if (in.has_pfs())
      return absl::StrCat(in.pfs().repo(), "@", in.pfs().branch(), ":", in.pfs().glob());
    std::vector<std::string> parts;
    const char* kind = !in.cross().empty()    ? "cross"
                       : !in.union_().empty() ? "union"
                       : !in.join().empty()   ? "join"
                                              : "group";
    for (const auto* list : {&in.cross(), &in.union_(), &in.join(), &in.group()}) {
      for (const auto& c : *list) parts.push_back(InputSummary(c));
    }
    return absl::StrCat(kind, "(", absl::StrJoin(parts, ", "), ")");
  }

  // RUNNING, PAUSED, or CRASHING: running, but its runners cannot start or
  // keep dying (PipelineInfo.runners says why).
  static std::string StateOf(const ppsv1::PipelineInfo& p) {
    const auto& r = p.runners();
    if (p.state() == ppsv1::RUNNING && !r.reason().empty() && r.ready() < r.desired()) {
      return "CRASHING";
    }
    return ppsv1::PipelineState_Name(p.state());
  }

  // "2/4", or the trouble: "0/1 ImagePullBackOff"; "-" when no backend says.
  static std::string RunnersSummary(const ppsv1::RunnerStatus& r) {
    if (r.backend().empty()) return "-";
    std::string out = absl::StrCat(r.ready(), "/", r.desired());
    if (!r.reason().empty()) absl::StrAppend(&out, " ", r.reason());
    return out;
  }

  int ListPipeline() {
    if (!NeedPositional(0, "")) return kExitUsage;
    ppsv1::ListPipelineResponse resp;
    auto ctx = Ctx();
    grpc::Status s = pps_->ListPipeline(ctx.get(), ppsv1::ListPipelineRequest(), &resp);
    if (!s.ok()) return Fail(s);
    if (json_) {
      for (const auto& p : resp.pipelines()) PrintJson(p);
      return kExitOk;
    }
    Table t({"NAME", "VERSION", "STATE", "RUNNERS", "INPUT", "CREATED", "DESCRIPTION"});
    for (const auto& p : resp.pipelines()) {
      t.Add({p.spec().pipeline().name(), absl::StrCat(p.version()), StateOf(p),
             RunnersSummary(p.runners()), InputSummary(p.spec().input()), Time(p.created()),
             p.spec().description()});
    }
    t.Print();
    return kExitOk;
  }

  int InspectPipeline() {
    if (!NeedPositional(1, "pipeline name")) return kExitUsage;
    ppsv1::InspectPipelineRequest req;
    req.set_name(args_.positional[0]);
    return CallOn(pps_, &ppsv1::Pps::Stub::InspectPipeline, req, [&](const ppsv1::PipelineInfo& p) {
      const auto& spec = p.spec();
      std::cout << "Name: " << spec.pipeline().name() << "\nDescription: " << spec.description()
                << "\nVersion: " << p.version() << "\nState: " << StateOf(p)
                << "\nCommand: " << absl::StrJoin(spec.transform().cmd(), " ") << "\nImage: "
                << (spec.transform().image().empty() ? "-" : spec.transform().image())
                << "\nInput: " << InputSummary(spec.input())
                << "\nOutput: " << spec.pipeline().name() << "@" << spec.output_branch()
                << "\nParallelism: " << spec.parallelism_spec().constant()
                << "\nDatum tries: " << spec.datum_tries()
                << "\nNetwork: " << (spec.transform().network() ? "yes (transform.network)" : "no")
                << "\nLimits: memory "
                << (spec.resource_limits().memory().empty() ? "unlimited"
                                                            : spec.resource_limits().memory())
                << ", processes "
                << (spec.resource_limits().processes()
                        ? absl::StrCat(spec.resource_limits().processes())
                        : std::string("default"))
                << "\nSandbox: " << (p.sandbox().empty() ? "- (no runner yet)" : p.sandbox());
      if (!p.runners().backend().empty()) {
        const auto& r = p.runners();
        std::cout << "\nRunners: " << r.ready() << " of " << r.desired() << " running ("
                  << r.backend() << ", " << r.workload() << ")";
        if (!r.reason().empty()) {
          std::cout << "\nRunner trouble: " << r.reason() << ": " << r.message();
          if (r.has_since()) std::cout << " (since " << Time(r.since()) << ")";
        }
      }
      for (const auto& w : p.warnings()) std::cout << "\nWarning: " << w;
      std::cout << "\nCreated: " << Time(p.created()) << "\nUpdated: " << Time(p.updated()) << "\n";
    });
  }

  int DeletePipeline() {
    if (!NeedPositional(1, "pipeline name")) return kExitUsage;
    ppsv1::DeletePipelineRequest req;
    req.set_name(args_.positional[0]);
    req.set_keep_repo(args_.Has("--keep-repo"));
    return CallOn(pps_, &ppsv1::Pps::Stub::DeletePipeline, req,
                  [&](const ppsv1::DeletePipelineResponse&) {
                    std::cout << "deleted pipeline " << req.name()
                              << (req.keep_repo() ? " (kept its repo)" : "") << "\n";
                  });
  }

  template <typename Req>
  int SetPipelineState(grpc::Status (ppsv1::Pps::Stub::*method)(grpc::ClientContext*, const Req&,
                                                                ppsv1::PipelineInfo*),
                       const char* verb) {
    if (!NeedPositional(1, "pipeline name")) return kExitUsage;
    Req req;
    req.set_name(args_.positional[0]);
    return CallOn(pps_, method, req, [&](const ppsv1::PipelineInfo& p) {
      std::cout << verb << " pipeline " << p.spec().pipeline().name() << "\n";
    });
  }
  // --- jobs and datums ----------------------------------------------------

  int StopPipeline() {
    return SetPipelineState<ppsv1::StopPipelineRequest>(&ppsv1::Pps::Stub::StopPipeline, "stopped");
  }

  int StartPipeline() {
    return SetPipelineState<ppsv1::StartPipelineRequest>(&ppsv1::Pps::Stub::StartPipeline,
                                                         "started");
  }

  int RerunPipeline() {
    if (!NeedPositional(1, "pipeline name")) return kExitUsage;
    ppsv1::RerunPipelineRequest req;
    req.set_name(args_.positional[0]);
    req.set_reprocess(args_.Has("--reprocess"));
    return CallOn(pps_, &ppsv1::Pps::Stub::RerunPipeline, req, [&](const ppsv1::JobInfo& j) {
      std::cout << "job " << j.pipeline() << "@" << j.id() << " (commit set " << j.commit_set()
                << ")\n";
    });
  }

  // edit pipeline: the spec in $EDITOR (as JSON), then an update with it
  // unless it came back unchanged.
  int EditPipeline() {
    if (!NeedPositional(1, "pipeline name")) return kExitUsage;
    ppsv1::InspectPipelineRequest req;
    req.set_name(args_.positional[0]);
    ppsv1::PipelineInfo info;
    {
      grpc::ClientContext ctx;
      grpc::Status s = pps_->InspectPipeline(&ctx, req, &info);
      if (!s.ok()) return Fail(s);
    }
    google::protobuf::util::JsonPrintOptions po;
    po.add_whitespace = true;
    po.preserve_proto_field_names = true;
    std::string before;
    if (!google::protobuf::util::MessageToJsonString(info.spec(), &before, po).ok()) {
      return Fail(absl::InternalError("cannot print the spec as JSON"));
    }
    std::string editor = args_.Get("--editor");
    for (const char* var : {"TUSK_EDITOR", "VISUAL", "EDITOR"}) {
      if (editor.empty() && std::getenv(var) != nullptr) editor = std::getenv(var);
    }
    if (editor.empty()) editor = "vi";
    std::string path = (std::filesystem::temp_directory_path() /
                        absl::StrCat("tusk-pipeline-", req.name(), "-XXXXXX.json"))
                           .string();
    int fd = ::mkstemps(path.data(), 5);
    if (fd < 0) return Fail(absl::InternalError(absl::StrCat("cannot create ", path)));
    bool written = ::write(fd, before.data(), before.size()) == static_cast<ssize_t>(before.size());
    ::close(fd);
    if (!written) return Fail(absl::InternalError(absl::StrCat("cannot write ", path)));
    // The editor command may carry arguments ("code --wait"), as git allows.
    std::string cmd = absl::StrCat(editor, " '", path, "'");
    int rc = std::system(cmd.c_str());
    auto text = ReadSpecText(path);
    if (rc != 0) {
      std::cerr << "tusk: the editor (" << editor << ") exited with status " << rc
                << "; the pipeline is unchanged (your edit is in " << path << ")\n";
      return kExitError;
    }
    if (!text.ok()) return Fail(text.status());
    if (*text == before) {
      std::filesystem::remove(path);
      std::cout << "pipeline " << req.name() << " unchanged\n";
      return kExitOk;
    }
    ppsv1::CreatePipelineRequest up;
    absl::Status parsed = ParseSpecJson(*text, path, up.mutable_spec());
    if (parsed.ok() && up.spec().pipeline().name() != req.name()) {
      parsed = absl::InvalidArgumentError(absl::StrCat(
          path, ": pipeline.name is ", up.spec().pipeline().name(), ", not ", req.name()));
    }
    if (!parsed.ok()) {
      std::cerr << "tusk: your edit is kept in " << path << "\n";
      return Fail(parsed);
    }
    up.set_update(true);
    up.set_reprocess(args_.Has("--reprocess"));
    int result =
        CallOn(pps_, &ppsv1::Pps::Stub::CreatePipeline, up, [&](const ppsv1::PipelineInfo& p) {
          std::cout << "updated pipeline " << p.spec().pipeline().name() << " (version "
                    << p.version() << ")\n";
          for (const auto& w : p.warnings()) std::cerr << "tusk: warning: " << w << "\n";
        });
    if (result == kExitOk) {
      std::filesystem::remove(path);
    } else {
      std::cerr << "tusk: your edit is kept in " << path << "\n";
    }
    return result;
  }
};

}  // namespace

void AddPipelineCommands(CommandTable* table) {
  table->Add(
      {"create pipeline",
       "Pipelines (specs in YAML or JSON, Pachyderm's field names)",
       "create pipeline -f SPEC.yaml|SPEC.json|URL|-",
       "  Creates the pipelines in a spec file or at a URL (http, https, s3; YAML with\n"
       "  several documents, or JSON with several objects or an array of them).\n"
       "  Pachyderm's field names: pipeline.name,\n"
       "  transform.cmd, input.pfs {repo, branch, glob, name}, cross, union, join (join_on,\n"
       "  outer_join), group (group_by), parallelism_spec.constant, datum_tries,\n"
       "  datum_timeout, job_timeout, output_branch). A field tusk does not support, a bad\n"
       "  glob, an unknown input repo or a cycle is an error naming it. The output repo\n"
       "  has the pipeline's name.\n",
       0,
       0,
       {{"-f", true, false, "--file"}},
       Run<PipelineCommands, &PipelineCommands::CreatePipeline>});
  table->Add({"update pipeline",
              "Pipelines (specs in YAML or JSON, Pachyderm's field names)",
              "update pipeline -f SPEC [--reprocess]",
              "  Replaces a pipeline's spec (a new version).\n",
              0,
              0,
              {{"-f", true, false, "--file"}, {"--reprocess", false, false}},
              Run<PipelineCommands, &PipelineCommands::UpdatePipeline>});
  table->Add({"rerun pipeline",
              "Pipelines (specs in YAML or JSON, Pachyderm's field names)",
              "rerun pipeline NAME [--reprocess]",
              "  A new job over the pipeline's current inputs, in a new commit set: failed\n"
              "  datums run again, the rest are reused; --reprocess runs every datum.\n",
              1,
              1,
              {{"--reprocess", false, false}},
              Run<PipelineCommands, &PipelineCommands::RerunPipeline>});
  table->Add({"edit pipeline",
              "Pipelines (specs in YAML or JSON, Pachyderm's field names)",
              "edit pipeline NAME [--editor CMD] [--reprocess]",
              "  Opens the pipeline's spec (JSON) in an editor (--editor, else $TUSK_EDITOR,\n"
              "  $VISUAL, $EDITOR, vi) and updates the pipeline with what you save; an\n"
              "  unchanged file changes nothing. A spec that does not parse is refused and\n"
              "  your edit is kept in a file named in the error.\n",
              1,
              1,
              {{"--editor", true, false}, {"--reprocess", false, false}},
              Run<PipelineCommands, &PipelineCommands::EditPipeline>});
  table->Add({"list pipeline",
              "Pipelines (specs in YAML or JSON, Pachyderm's field names)",
              "list pipeline",
              "",
              0,
              0,
              {},
              Run<PipelineCommands, &PipelineCommands::ListPipeline>});
  table->Add({"inspect pipeline",
              "Pipelines (specs in YAML or JSON, Pachyderm's field names)",
              "inspect pipeline NAME",
              "",
              1,
              1,
              {},
              Run<PipelineCommands, &PipelineCommands::InspectPipeline>});
  table->Add({"delete pipeline",
              "Pipelines (specs in YAML or JSON, Pachyderm's field names)",
              "delete pipeline NAME [--keep-repo]",
              "  Deletes a pipeline and its output repo (unless --keep-repo).\n"
              "  Refused while another pipeline reads its output.\n",
              1,
              1,
              {{"--keep-repo", false, false}},
              Run<PipelineCommands, &PipelineCommands::DeletePipeline>});
  table->Add({"stop pipeline",
              "Pipelines (specs in YAML or JSON, Pachyderm's field names)",
              "stop pipeline NAME",
              "  New input commits wait until 'start pipeline'.\n",
              1,
              1,
              {},
              Run<PipelineCommands, &PipelineCommands::StopPipeline>});
  table->Add({"start pipeline",
              "Pipelines (specs in YAML or JSON, Pachyderm's field names)",
              "start pipeline NAME",
              "",
              1,
              1,
              {},
              Run<PipelineCommands, &PipelineCommands::StartPipeline>});
}

}  // namespace tusk::cli
