#pragma once

// CommandBase: what every command's code works with: its parsed arguments,
// tuskd's stubs, --json, and the helpers that turn calls into output and
// statuses into exit codes. A command is a method of a subclass (one per
// resource file), run through Run<Class, &Class::Method>, which a Command's
// `run` holds.
//
// Not thread-safe; one per command run.

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "cli/output.h"
#include "common/args.h"
#include "common/grpc_status.h"
#include "google/protobuf/message.h"
#include "pfs/refs.h"
#include "proto/ingest.grpc.pb.h"
#include "proto/pfs.grpc.pb.h"
#include "proto/pps.grpc.pb.h"

namespace tusk::cli {

using namespace tusk::pfs::v1;  // NOLINT: the API messages
namespace fs = std::filesystem;
namespace iv1 = tusk::ingest::v1;
namespace ppsv1 = tusk::pps::v1;

class CommandBase {
 public:
  explicit CommandBase(const Invocation& inv)
      : address_(inv.address),
        channel_(inv.channel),
        args_(inv.args),
        api_(API::NewStub(inv.channel)),
        sources_stub_(iv1::Sources::NewStub(inv.channel)),
        pps_stub_(ppsv1::Pps::NewStub(inv.channel)),
        stub_(api_.get()),
        sources_(sources_stub_.get()),
        pps_(pps_stub_.get()),
        json_(inv.args.Has("--json")) {}
  virtual ~CommandBase() = default;

 protected:
  int Fail(const absl::Status& s) {
    std::cerr << "tusk: " << absl::StatusCodeToString(s.code()) << ": " << s.message() << "\n";
    // Only when tuskd itself could not be reached: an unavailable object
    // store behind a running tuskd is not a reason to doubt the address.
    if (s.code() == absl::StatusCode::kUnavailable &&
        (channel_ == nullptr || channel_->GetState(false) != GRPC_CHANNEL_READY)) {
      std::cerr << "tusk: is tuskd running at " << address_
                << "? (set --address or TUSK_ADDRESS)\n";
    }
    return ExitCodeFor(s);
  }

  int Fail(const grpc::Status& s) { return Fail(FromGrpcStatus(s)); }

  void PrintJson(const google::protobuf::Message& m) { std::cout << Json(m) << "\n"; }

  static std::string Json(const google::protobuf::Message& m) {
    google::protobuf::util::JsonPrintOptions opts;
    opts.always_print_primitive_fields = true;
    opts.preserve_proto_field_names = true;
    std::string out;
    // Serializing a valid message to JSON cannot fail; nothing to report if it did.
    (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
    return out;
  }

  bool NeedPositional(size_t n, const std::string& what) {
    if (args_.positional.size() < n) {
      UsageError("missing " + what);
      return false;
    }
    if (args_.positional.size() > n) {
      UsageError("unexpected argument '" + args_.positional[n] + "'");
      return false;
    }
    return true;
  }

  absl::StatusOr<pfs::FileSpec> Spec(size_t i) {
    auto s = pfs::ParseFileSpec(args_.positional[i]);
    if (!s.ok()) return s.status();
    return *s;
  }

  std::unique_ptr<grpc::ClientContext> Ctx() { return std::make_unique<grpc::ClientContext>(); }

  // A unary call: prints the response as JSON with --json, else with `human`.
  template <typename Req, typename Resp, typename Human>
  int Call(grpc::Status (API::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
           const Req& req, Human human) {
    return CallOn(stub_, method, req, human);
  }

  template <typename Stub, typename Req, typename Resp, typename Human>
  int CallOn(Stub* stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
             const Req& req, Human human) {
    Resp resp;
    grpc::ClientContext ctx;
    grpc::Status s = (stub->*method)(&ctx, req, &resp);
    if (!s.ok()) return Fail(s);
    if (json_) {
      PrintJson(resp);
    } else {
      human(resp);
    }
    return kExitOk;
  }

  // A server-streaming call: `each` sees every message; then the status.
  template <typename Req, typename Resp, typename Each>
  int Stream(std::unique_ptr<grpc::ClientReader<Resp>> (API::Stub::*method)(grpc::ClientContext*,
                                                                            const Req&),
             const Req& req, Each each) {
    grpc::ClientContext ctx;
    auto reader = (stub_->*method)(&ctx, req);
    Resp msg;
    while (reader->Read(&msg)) each(msg);
    grpc::Status s = reader->Finish();
    if (!s.ok()) return Fail(s);
    return kExitOk;
  }

  void PrintCommit(const CommitInfo& c) {
    if (json_) return PrintJson(c);
    std::cout << "Commit: " << c.repo() << "@" << c.id() << "\n"
              << "Branch: " << c.branch() << "\n"
              << "Parent: " << Short(c.parent()) << "\n"
              << "State: " << CommitState_Name(c.state()) << "\n"
              << "Origin: " << Origin_Name(c.origin()) << "\n"
              << "Started: " << Time(c.started()) << "\n"
              << "Finished: " << Time(c.finished()) << "\n"
              << "Size: " << HumanBytes(c.size_bytes()) << " in " << c.file_count() << " files\n"
              << "Root: " << Short(c.root()) << "\n"
              << "Commit set: " << c.commit_set() << "\n"
              << "Message: " << c.message() << "\n";
    if (!c.error().empty()) std::cout << "Error: " << c.error() << "\n";
    for (const auto& p : c.provenance()) {
      std::cout << "Provenance: " << p.repo() << "@" << p.id() << " (" << p.branch() << ")\n";
    }
    for (const auto& p : c.subvenance()) {
      std::cout << "Subvenance: " << p.repo() << "@" << p.id() << " (" << p.branch() << ")\n";
    }
    for (const auto& [k, v] : c.metadata()) std::cout << "Metadata: " << k << "=" << v << "\n";
  }

  // --- commands -----------------------------------------------------------

  absl::StatusOr<pfs::FileSpec> BranchSpec() {
    auto spec = Spec(0);
    if (!spec.ok()) return spec.status();
    if (!spec->has_ref) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", args_.positional[0], "' needs a branch: REPO@BRANCH"));
    }
    if (spec->has_path) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", args_.positional[0], "' has a path; expected REPO@BRANCH"));
    }
    return spec;
  }

  const std::string address_;
  const std::shared_ptr<grpc::Channel> channel_;  // its state tells whether tuskd was reached
  const Args& args_;

 private:
  std::unique_ptr<API::Stub> api_;
  std::unique_ptr<iv1::Sources::Stub> sources_stub_;
  std::unique_ptr<ppsv1::Pps::Stub> pps_stub_;

 protected:
  API::Stub* const stub_;
  iv1::Sources::Stub* const sources_;
  ppsv1::Pps::Stub* const pps_;
  const bool json_;
};

// Runs command method M of T.
template <typename T, int (T::*M)()>
int Run(const Invocation& inv) {
  T command(inv);
  return (command.*M)();
}

}  // namespace tusk::cli
