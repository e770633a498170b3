// Reading and deleting files: get, list, glob, inspect, delete.

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
#include "common/status.h"
#include "common/version.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace tusk::cli {
namespace {

class FileCommands : public CommandBase {
 public:
  using CommandBase::CommandBase;

  int GetFile() {
    if (!NeedPositional(1, "REPO@REF:/PATH")) return kExitUsage;
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    std::string out = args_.Get("-o");
    GetFileRequest req;
    req.set_repo(spec->repo);
    req.set_ref(spec->ref);
    req.set_path(spec->path);
    auto ctx = Ctx();
    auto reader = stub_->GetFile(ctx.get(), req);
    GetFileResponse msg;
    int fd = -1;
    bool to_stdout = out.empty() || out == "-";
    absl::Status status;
    uint64_t files = 0, bytes = 0;
    std::unique_ptr<Progress> progress;
    std::error_code ec;
    bool out_is_dir = !to_stdout && fs::is_directory(out, ec);
    while (status.ok() && reader->Read(&msg)) {
      if (msg.has_file()) {
        const FileInfo& f = msg.file();
        if (fd >= 0 && fd != STDOUT_FILENO) ::close(fd);
        files++;
        if (to_stdout) {
          if (f.path() != spec->path) {
            status = absl::InvalidArgumentError(
                absl::StrCat(spec->path, " is a directory; use -o DIR to write its files"));
            break;
          }
          fd = STDOUT_FILENO;
        } else {
          std::string target;
          if (f.path() == spec->path) {
            target = out_is_dir ? (fs::path(out) / fs::path(f.path()).filename()).string() : out;
          } else {
            // A file beneath the requested directory: keep its relative path,
            // which the server normalized; refuse anything that would escape OUT.
            std::string rel = f.path().substr(spec->path == "/" ? 1 : spec->path.size() + 1);
            if (rel.empty() || rel[0] == '/' || rel.find("..") != std::string::npos) {
              status =
                  absl::DataLossError(absl::StrCat("refusing to write unsafe path ", f.path()));
              break;
            }
            target = (fs::path(out) / rel).string();
            fs::create_directories(fs::path(target).parent_path(), ec);
          }
          fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
          if (fd < 0) {
            status = absl::InternalError(
                absl::StrCat("cannot write ", target, ": ", std::strerror(errno)));
            break;
          }
        }
        if (!progress)
          progress =
              std::make_unique<Progress>("downloading", f.type() == FILE ? f.size_bytes() : 0, 0);
        progress->Add(0, 1);
      }
      if (!msg.data().empty()) {
        const std::string& d = msg.data();
        size_t done = 0;
        while (done < d.size()) {
          ssize_t n = ::write(fd, d.data() + done, d.size() - done);
          if (n < 0) {
            if (errno == EINTR) continue;
            status = absl::InternalError(absl::StrCat("write failed: ", std::strerror(errno)));
            break;
          }
          done += static_cast<size_t>(n);
        }
        bytes += d.size();
        if (progress) progress->Add(d.size(), 0);
      }
    }
    if (!status.ok()) ctx->TryCancel();
    grpc::Status s = reader->Finish();
    if (fd >= 0 && fd != STDOUT_FILENO) ::close(fd);
    if (progress) progress->Done();
    if (!status.ok()) return Fail(status);
    if (!s.ok()) return Fail(s);
    if (json_ && !to_stdout) {
      std::cout << "{\"files\":" << files << ",\"bytes\":" << bytes << "}\n";
    }
    return kExitOk;
  }

  void PrintFiles(const std::vector<FileInfo>& infos) {
    if (json_) {
      for (const auto& f : infos) PrintJson(f);
      return;
    }
    Table t({"NAME", "TYPE", "SIZE"});
    for (const auto& f : infos) {
      t.Add({f.path() + (f.type() == DIR && f.path() != "/" ? "/" : ""),
             f.type() == DIR ? "dir" : "file", HumanBytes(f.size_bytes())});
    }
    t.Print();
  }

  int ListFile() {
    if (!NeedPositional(1, "REPO@REF[:/DIR]")) return kExitUsage;
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    std::vector<FileInfo> infos;
    if (args_.Has("--staged")) {
      // Every file written into the open commit so far.
      ListStagedFileRequest req;
      req.set_repo(spec->repo);
      req.set_ref(spec->ref);
      int rc =
          Stream(&API::Stub::ListStagedFile, req, [&](const FileInfo& f) { infos.push_back(f); });
      if (rc == kExitOk) PrintFiles(infos);
      return rc;
    }
    ListFileRequest req;
    req.set_repo(spec->repo);
    req.set_ref(spec->ref);
    req.set_path(spec->path);
    int rc = Stream(&API::Stub::ListFile, req, [&](const FileInfo& f) { infos.push_back(f); });
    if (rc == kExitOk) PrintFiles(infos);
    return rc;
  }

  int GlobFile() {
    if (!NeedPositional(1, "REPO@REF:PATTERN")) return kExitUsage;
    const std::string& arg = args_.positional[0];
    // The pattern is not a path (it may hold '*', '{', ...): split it off before parsing.
    size_t colon = arg.find(':');
    if (colon == std::string::npos) return UsageError("glob file needs REPO@REF:PATTERN");
    auto spec = pfs::ParseFileSpec(arg.substr(0, colon));
    if (!spec.ok()) return Fail(spec.status());
    GlobFileRequest req;
    req.set_repo(spec->repo);
    req.set_ref(spec->ref);
    req.set_pattern(arg.substr(colon + 1));
    std::vector<FileInfo> infos;
    int rc = Stream(&API::Stub::GlobFile, req, [&](const FileInfo& f) { infos.push_back(f); });
    if (rc == kExitOk) PrintFiles(infos);
    return rc;
  }

  int InspectFile() {
    if (!NeedPositional(1, "REPO@REF:/PATH")) return kExitUsage;
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    InspectFileRequest req;
    req.set_repo(spec->repo);
    req.set_ref(spec->ref);
    req.set_path(spec->path);
    return Call(&API::Stub::InspectFile, req, [&](const FileInfo& f) {
      std::cout << "Path: " << f.path() << "\nType: " << (f.type() == DIR ? "dir" : "file")
                << "\nSize: " << HumanBytes(f.size_bytes()) << " (" << f.size_bytes() << " bytes)"
                << "\nHash: " << Short(f.hash()) << "\nCommit: " << f.commit() << "\n";
      if (f.type() == DIR) {
        std::cout << "Files: " << f.file_count() << "\n";
      } else {
        std::cout << "Chunks: " << f.chunk_count() << "\n";
      }
    });
  }

  int DeleteFile() {
    if (!NeedPositional(1, "REPO@REF:/PATH")) return kExitUsage;
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    if (!spec->has_path) return UsageError("delete file needs a path: REPO@REF:/PATH");
    DeleteFileRequest req;
    req.set_repo(spec->repo);
    req.set_ref(spec->ref);
    req.set_path(spec->path);
    req.set_force(args_.Has("--force"));
    return Call(&API::Stub::DeleteFile, req, [&](const DeleteFileResponse& resp) {
      std::cout << "deleted " << spec->path << " in " << resp.commit().repo() << "@"
                << resp.commit().id() << "\n";
    });
  }
};

}  // namespace

void AddFileCommands(CommandTable* table) {
  table->Add(
      {"get file",
       "Files",
       "get file REPO@REF:/PATH [-o OUT]",
       "  Writes a file to stdout or OUT; a directory's tree is written beneath directory OUT.\n",
       1,
       1,
       {{"-o", true, false, "--output"}},
       Run<FileCommands, &FileCommands::GetFile>});
  table->Add(
      {"list file",
       "Files",
       "list file REPO@REF[:/DIR]",
       "tusk list file REPO@BRANCH|REPO@ID --staged\n"
       "  --staged lists what an open commit holds so far (closed upload streams), with hashes.\n",
       1,
       1,
       {{"--staged", false, false}},
       Run<FileCommands, &FileCommands::ListFile>});
  table->Add({"glob file",
              "Files",
              "glob file REPO@REF:PATTERN",
              "  PATTERN: * ? [abc] {a,b} within a path component, ** across components.\n",
              1,
              1,
              {},
              Run<FileCommands, &FileCommands::GlobFile>});
  table->Add({"inspect file",
              "Files",
              "inspect file REPO@REF:/PATH",
              "",
              1,
              1,
              {},
              Run<FileCommands, &FileCommands::InspectFile>});
  table->Add({"delete file",
              "Files",
              "delete file REPO@REF:/PATH [--force]",
              "  Deletes a file or a directory tree. --force: even in a pipeline's output\n"
              "  branch.\n",
              1,
              1,
              {{"--force", false, false}},
              Run<FileCommands, &FileCommands::DeleteFile>});
}

}  // namespace tusk::cli
