// put file: plans what to send (local files, directories, URLs, S3 prefixes,
// stdin, tar streams), then sends it over one or more streams into one commit,
// resuming an interrupted upload.

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
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
#include "http/s3.h"
#include "http/url_reader.h"
#include "pfs/file_hash.h"

namespace tusk::cli {
namespace {

// Metadata of a commit that `put file` started itself: it names the upload
// (local source and destination), so that a rerun of an interrupted put
// resumes it and finishes it, and nothing else joins it.
constexpr const char* kPutMetadataKey = pfs::kUploadOwnerMetadataKey;

class PutFileCommand : public CommandBase {
 public:
  using CommandBase::CommandBase;

  // Reads up to n bytes of one file's content; 0 at its end.
  using ReadFn = std::function<absl::StatusOr<size_t>(char*, size_t)>;

  static ReadFn FdReader(int fd, const std::string& name) {
    return [fd, name](char* buf, size_t n) -> absl::StatusOr<size_t> {
      for (;;) {
        ssize_t got = ::read(fd, buf, n);
        if (got >= 0) return static_cast<size_t>(got);
        if (errno == EINTR) continue;
        return absl::InternalError(absl::StrCat("reading ", name, ": ", std::strerror(errno)));
      }
    };
  }

  // Sends one file's content as `dest` on the stream; `first` (if set) is the
  // stream's first message. `buf` is the caller's 1 MiB scratch buffer.
  static absl::Status SendFile(grpc::ClientWriter<PutFileRequest>* writer,
                               const PutFileRequest* first, const ReadFn& read,
                               const std::string& dest, bool append, Progress* progress,
                               std::string* buf) {
    static constexpr size_t kBlock = 1 << 20;
    if (buf->size() != kBlock) buf->resize(kBlock);
    // A local file's name becomes a path in tusk, which is UTF-8.
    RETURN_IF_ERROR(pfs::CheckUtf8("destination path (from a local file name)", dest));
    PutFileRequest msg;
    if (first) msg = *first;
    msg.set_path(dest);
    msg.set_append(append);
    uint64_t total = 0;
    while (true) {
      size_t filled = 0;
      bool eof = false;
      while (filled < kBlock) {
        auto n = read(buf->data() + filled, kBlock - filled);
        if (!n.ok()) return n.status();
        if (*n == 0) {
          eof = true;
          break;
        }
        filled += *n;
      }
      total += filled;
      msg.set_data(buf->data(), filled);
      if (eof) {
        msg.set_eof(true);
        msg.set_size(total);
      }
      // Small files end in their first message: let gRPC coalesce those
      // writes (the close message that ends the stream flushes them).
      grpc::WriteOptions opts;
      if (eof && total < kBlock) opts.set_buffer_hint();
      if (!writer->Write(msg, opts))
        return absl::UnavailableError("the server closed the upload stream");
      progress->Add(filled, eof ? 1 : 0);
      if (eof) return absl::OkStatus();
      msg.Clear();
    }
  }

  // One PutFile stream into repo@ref: `next` yields (reader, destination)
  // pairs until it returns false. Sends everything, then closes the stream;
  // any failure cancels it (the server keeps nothing of an unclosed stream).
  using NextFn = std::function<absl::StatusOr<bool>(ReadFn*, std::string*)>;

  absl::Status UploadStream(const std::string& repo, const std::string& ref, const NextFn& next,
                            Progress* progress, PutFileResponse* resp) {
    PutFileRequest first;
    first.set_repo(repo);
    first.set_ref(ref);
    first.set_message(args_.Get("-m"));
    first.set_force(args_.Has("--force"));
    auto ctx = Ctx();
    auto writer = stub_->PutFile(ctx.get(), resp);
    bool append = args_.Has("--append");
    std::string buf;
    absl::Status status, read_error;
    bool first_sent = false;
    for (;;) {
      ReadFn read;
      std::string dest;
      auto more = next(&read, &dest);
      if (!more.ok()) {
        status = more.status();
        break;
      }
      if (!*more) break;
      // A failure to read the source is the cause, whatever the stream says.
      ReadFn checked = [&](char* b, size_t n) {
        auto got = read(b, n);
        if (!got.ok()) read_error = got.status();
        return got;
      };
      status = SendFile(writer.get(), first_sent ? nullptr : &first, checked, dest, append,
                        progress, &buf);
      first_sent = true;
      if (!status.ok()) break;
    }
    if (status.ok()) {
      PutFileRequest close = first_sent ? PutFileRequest() : first;
      close.set_close(true);
      writer->WriteLast(close, grpc::WriteOptions());  // A failure shows in Finish().
    } else {
      ctx->TryCancel();
    }
    absl::Status finished = FromGrpcStatus(writer->Finish());
    if (!read_error.ok()) return read_error;
    // The local cause first; a server error explains a closed stream.
    if (!status.ok() && status.code() != absl::StatusCode::kUnavailable) return status;
    if (!finished.ok()) return finished;
    return status;
  }

  // Where an upload goes. An empty commit id: one stream to REF, which makes
  // (and finishes) its own commit unless REF has one open.
  struct Target {
    std::string commit_id;
    bool existing = false;      // an open commit from before: resume into it
    bool finish_after = false;  // started by a put (this one or an interrupted one)
  };

  // Adds one stream's counts to a total; the latest commit wins.
  static void AddPut(const PutFileResponse& r, PutFileResponse* sum) {
    sum->set_files(sum->files() + r.files());
    sum->set_bytes(sum->bytes() + r.bytes());
    sum->set_new_bytes(sum->new_bytes() + r.new_bytes());
    if (r.has_commit()) *sum->mutable_commit() = r.commit();
  }

  absl::StatusOr<Target> ResolveTarget(const pfs::FileSpec& spec, bool start_one,
                                       const std::string& description) {
    Target t;
    grpc::Status s;
    if (pfs::IsCommitId(spec.ref)) {
      t.commit_id = spec.ref;  // branch names never look like commit ids
    } else {
      InspectBranchRequest ib;
      ib.set_repo(spec.repo);
      ib.set_branch(spec.ref);
      BranchInfo b;
      auto ctx = Ctx();
      s = stub_->InspectBranch(ctx.get(), ib, &b);
      if (!s.ok() && s.error_code() != grpc::StatusCode::NOT_FOUND) return FromGrpcStatus(s);
      if (s.ok()) t.commit_id = b.open_commit();
    }
    if (!t.commit_id.empty()) {
      const bool by_id = pfs::IsCommitId(spec.ref);
      InspectCommitRequest ic;
      ic.set_repo(spec.repo);
      ic.set_ref(t.commit_id);
      CommitInfo c;
      auto ctx2 = Ctx();
      s = stub_->InspectCommit(ctx2.get(), ic, &c);
      if (!s.ok() && (by_id || s.error_code() != grpc::StatusCode::NOT_FOUND))
        return FromGrpcStatus(s);
      auto owner = c.metadata().find(kPutMetadataKey);
      if (by_id) {
        if (c.state() == FINISHED) {
          return absl::FailedPreconditionError(absl::StrCat(
              "commit ", spec.repo, "@", c.id(), " is finished; write to a branch instead"));
        }
        t.existing = true;
        t.finish_after = owner != c.metadata().end() && owner->second == description;
        return t;
      }
      // The branch's open commit: joined if a user started it (start commit),
      // resumed if it is this very upload's, interrupted; anything else (an
      // automatic commit, another upload's) is not ours: the write goes to
      // the branch and tuskd makes it wait its turn for a commit of its own.
      const bool ours = owner != c.metadata().end() && owner->second == description;
      const bool someone_elses = c.automatic() || (owner != c.metadata().end() && !ours);
      if (s.ok() && c.state() != FINISHED && !someone_elses) {
        t.existing = true;
        t.finish_after = ours;
        return t;
      }
      t.commit_id.clear();
    }
    if (!start_one) return t;
    StartCommitRequest sc;
    sc.set_repo(spec.repo);
    sc.set_branch(spec.ref);
    sc.set_force(args_.Has("--force"));
    sc.set_message(args_.Has("-m") ? args_.Get("-m") : description);
    (*sc.mutable_metadata())[kPutMetadataKey] = description;
    CommitInfo c;
    auto ctx3 = Ctx();
    s = stub_->StartCommit(ctx3.get(), sc, &c);
    if (!s.ok()) return FromGrpcStatus(s);
    t.commit_id = c.id();
    t.finish_after = true;
    return t;
  }

  // Drops the local files that the open commit already holds with the same
  // content (same size, then same hash, computed here the way tuskd does).
  absl::Status SkipStaged(const std::string& repo, const std::string& commit_id,
                          std::vector<Source>* sources, uint64_t* skipped_files,
                          uint64_t* skipped_bytes) {
    std::map<std::string, std::pair<uint64_t, std::string>> staged;
    ListStagedFileRequest req;
    req.set_repo(repo);
    req.set_ref(commit_id);
    auto ctx = Ctx();
    auto reader = stub_->ListStagedFile(ctx.get(), req);
    FileInfo f;
    while (reader->Read(&f)) staged[f.path()] = {f.size_bytes(), f.hash()};
    RETURN_IF_ERROR(FromGrpcStatus(reader->Finish()));
    if (staged.empty()) return absl::OkStatus();

    VersionResponse v;
    auto vctx = Ctx();
    RETURN_IF_ERROR(FromGrpcStatus(stub_->Version(vctx.get(), VersionRequest(), &v)));
    if (v.chunk_avg_size() == 0) return absl::OkStatus();  // an old server: no skipping
    pfs::FileHasher hasher(
        pfs::ChunkerOptions{v.chunk_min_size(), v.chunk_avg_size(), v.chunk_max_size()});
    std::string buf(1 << 20, '\0');
    std::vector<Source> keep;
    for (auto& s : *sources) {
      auto it = staged.find(s.dest);
      bool same = false;
      if (!s.url && s.src != "-" && it != staged.end() && it->second.first == s.size) {
        int fd = ::open(s.src.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
          return absl::NotFoundError(
              absl::StrCat("cannot open ", s.src, ": ", std::strerror(errno)));
        ReadFn read = FdReader(fd, s.src);
        absl::Status st;
        for (;;) {
          auto n = read(buf.data(), buf.size());
          if (!n.ok()) {
            st = n.status();
            break;
          }
          if (*n == 0) break;
          hasher.Update(absl::string_view(buf.data(), *n));
        }
        ::close(fd);
        RETURN_IF_ERROR(st);
        // An empty file's hash is shown as "" (no chunks).
        std::string hex = hasher.Finish().Hex();
        same = it->second.second == hex || (s.size == 0 && it->second.second.empty());
      }
      if (same) {
        ++*skipped_files;
        *skipped_bytes += s.size;
      } else {
        keep.push_back(std::move(s));
      }
    }
    *sources = std::move(keep);
    return absl::OkStatus();
  }

  // Names an upload for kPutMetadataKey: the same command run again (from
  // anywhere) has the same name, another one does not.
  int PutFile() {
    if (!NeedPositional(1, "REPO@REF[:/PATH]")) return kExitUsage;
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    if (!args_.Has("-f")) return UsageError("put file needs -f LOCAL|URL (or -f - for stdin)");
    const std::vector<std::string>& locals = args_.values.at("-f");
    int parallel = 1;
    if (std::string bad = CheckPutFlags(args_, *spec, locals, &parallel); !bad.empty()) {
      return UsageError(bad);
    }
    if (args_.Has("--untar")) return PutTar(*spec, locals[0]);
    bool dest_is_dir =
        locals.size() > 1 || (!args_.positional[0].empty() && args_.positional[0].back() == '/');
    std::vector<Source> sources;
    http::S3Options s3 = S3OptionsFromArgs(args_);
    for (const auto& local : locals) {
      absl::Status st = PlanSources(args_, *spec, local, dest_is_dir, &s3, &sources);
      if (st.code() == absl::StatusCode::kInvalidArgument && !http::UrlReader::IsUrl(local)) {
        return UsageError(std::string(st.message()));
      }
      if (!st.ok()) return Fail(st);
    }
    std::stable_sort(sources.begin(), sources.end(),
                     [](const Source& a, const Source& b) { return a.dest < b.dest; });
    for (size_t i = 1; i < sources.size(); ++i) {
      if (sources[i].dest == sources[i - 1].dest) {
        return UsageError(absl::StrCat(sources[i - 1].src, " and ", sources[i].src,
                                       " would both be ", sources[i].dest));
      }
    }
    // Several streams need an open commit to share; an open commit from
    // before is resumed: what it already holds is not sent again.
    auto target =
        ResolveTarget(*spec, parallel > 1 && sources.size() > 1, UploadName(*spec, locals));
    if (!target.ok()) return Fail(target.status());
    uint64_t skipped_files = 0, skipped_bytes = 0;
    if (target->existing && !args_.Has("--append")) {
      absl::Status st =
          SkipStaged(spec->repo, target->commit_id, &sources, &skipped_files, &skipped_bytes);
      if (!st.ok()) return Fail(st);
      if (skipped_files > 0 && !json_) {
        std::cerr << "resuming " << spec->repo << "@" << target->commit_id << ": " << skipped_files
                  << " files (" << HumanBytes(skipped_bytes) << ") are already there\n";
      }
    }
    PutFileResponse resp;
    if (int rc = Send(*spec, *target, sources, s3, parallel, &resp); rc != kExitOk) return rc;
    resp.set_skipped_files(skipped_files);
    resp.set_skipped_bytes(skipped_bytes);
    return PrintPut(resp);
  }

  // Sends `sources` over `parallel` streams to the target; finishes a
  // commit that put started. Fills `resp` with the totals and the commit.
  int Send(const pfs::FileSpec& spec_in, const Target& target_in,
           const std::vector<Source>& sources, const http::S3Options& s3, int parallel,
           PutFileResponse* resp_out) {
    const pfs::FileSpec* spec = &spec_in;
    const Target* target = &target_in;
    uint64_t total_bytes = 0;
    for (const auto& s : sources) total_bytes += s.size;
    Progress progress("uploading", total_bytes, sources.size());
    // Files are handed out in path order to however many streams run. Into
    // an open commit, each stream closes every batch, so that an interrupted
    // upload keeps (and a rerun skips) the batches that arrived.
    size_t batch_files = 2000;
    static constexpr uint64_t kBatchBytes = 256 << 20;
    if (args_.Has("--batch") &&
        (!absl::SimpleAtoi(args_.Get("--batch"), &batch_files) || batch_files < 1)) {
      return UsageError("--batch needs a number of files (at least 1)");
    }
    const bool batched = !target->commit_id.empty();
    int streams = static_cast<int>(std::clamp<size_t>(sources.size(), 1, parallel));
    std::atomic<size_t> next_source{0};
    struct StreamState {
      int fd = -1;
      std::unique_ptr<http::UrlReader> url;
      size_t batch_files = 0;
      uint64_t batch_bytes = 0;
      void Close() {
        if (fd >= 0 && fd != STDIN_FILENO) ::close(fd);
        fd = -1;
        url.reset();
      }
    };
    std::vector<StreamState> state(streams);
    auto next_for = [&](int stream) -> NextFn {
      return [&, stream](ReadFn* read, std::string* dest) -> absl::StatusOr<bool> {
        StreamState& st = state[stream];
        st.Close();
        if (batched && (st.batch_files >= batch_files || st.batch_bytes >= kBatchBytes))
          return false;
        size_t i = next_source++;
        if (i >= sources.size()) return false;
        const Source& s = sources[i];
        st.batch_files++;
        st.batch_bytes += s.size;
        *dest = s.dest;
        if (s.url) {
          ASSIGN_OR_RETURN(st.url, http::UrlReader::Open(s.src, s3));
          if (sources.size() == 1 && st.url->size() > 0) progress.SetTotal(st.url->size());
          http::UrlReader* r = st.url.get();
          *read = [r](char* buf, size_t n) { return r->Read(buf, n); };
          return true;
        }
        st.fd = s.src == "-" ? STDIN_FILENO : ::open(s.src.c_str(), O_RDONLY | O_CLOEXEC);
        if (st.fd < 0)
          return absl::NotFoundError(
              absl::StrCat("cannot open ", s.src, ": ", std::strerror(errno)));
        *read = FdReader(st.fd, s.src);
        return true;
      };
    };

    PutFileResponse& resp = *resp_out;
    absl::Status status;
    const std::string ref = batched ? target->commit_id : spec->ref;
    if (!sources.empty()) {
      std::vector<PutFileResponse> resps(streams);
      std::vector<absl::Status> statuses(streams);
      std::vector<std::thread> threads;
      for (int i = 0; i < streams; ++i) {
        threads.emplace_back([&, i] {
          // Batches until the sources run out (one batch when not batched).
          while (next_source < sources.size()) {
            PutFileResponse r;
            state[i].batch_files = 0;
            state[i].batch_bytes = 0;
            statuses[i] = UploadStream(spec->repo, ref, next_for(i), &progress, &r);
            if (!statuses[i].ok()) {
              next_source = sources.size();  // one failed stream stops the others early
              break;
            }
            AddPut(r, &resps[i]);
          }
          state[i].Close();
        });
      }
      for (auto& t : threads) t.join();
      for (const auto& st : statuses) {
        if (status.ok() && !st.ok()) status = st;
      }
      for (const auto& r : resps) AddPut(r, &resp);
    }
    progress.Done();
    if (!status.ok()) {
      if (batched) {
        std::cerr
            << "tusk: the upload stopped; commit " << spec->repo << "@" << target->commit_id
            << " stays open with the files that arrived. Run the same command again to resume.\n";
      }
      return Fail(status);
    }
    if (batched && target->finish_after) {
      FinishCommitRequest req;
      req.set_repo(spec->repo);
      req.set_ref(target->commit_id);
      CommitInfo c;
      auto ctx = Ctx();
      grpc::Status s = stub_->FinishCommit(ctx.get(), req, &c);
      if (!s.ok()) return Fail(s);
      *resp.mutable_commit() = c;
    } else if (batched && !resp.has_commit()) {
      InspectCommitRequest ic;  // nothing was sent: show the commit as it is
      ic.set_repo(spec->repo);
      ic.set_ref(target->commit_id);
      auto ctx = Ctx();
      grpc::Status s = stub_->InspectCommit(ctx.get(), ic, resp.mutable_commit());
      if (!s.ok()) return Fail(s);
    }
    return kExitOk;
  }

  // put file --untar: the regular files of a tar stream, in one stream (one
  // commit unless REF has an open commit).
  int PutTar(const pfs::FileSpec& spec, const std::string& local) {
    int fd = STDIN_FILENO;
    uint64_t total = 0;
    if (local != "-") {
      fd = ::open(local.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        return Fail(
            absl::NotFoundError(absl::StrCat("cannot open ", local, ": ", std::strerror(errno))));
      struct stat st;
      if (::fstat(fd, &st) == 0) total = static_cast<uint64_t>(st.st_size);
    }
    std::string base = spec.has_path ? spec.path : "/";
    TarReader tar(fd);
    // Progress counts archive bytes read when the archive's size is known.
    Progress progress("untarring", total, 0);
    NextFn next = [&](ReadFn* read, std::string* dest) -> absl::StatusOr<bool> {
      auto path = tar.Next();
      if (!path.ok()) return path.status();
      if (path->empty()) return false;
      *dest = pfs::JoinPath(base, *path);
      *read = [&tar](char* buf, size_t n) { return tar.Read(buf, n); };
      return true;
    };
    PutFileResponse resp;
    absl::Status status = UploadStream(spec.repo, spec.ref, next, &progress, &resp);
    progress.Done();
    if (fd != STDIN_FILENO) ::close(fd);
    if (!status.ok()) return Fail(status);
    if (tar.skipped() > 0) {
      std::cerr << "tusk: skipped " << tar.skipped()
                << " archive entries that are not regular files (links, devices)\n";
    }
    return PrintPut(resp);
  }

  int PrintPut(const PutFileResponse& resp) {
    if (json_) {
      PrintJson(resp);
    } else {
      std::cout << "put " << resp.files() << " files (" << HumanBytes(resp.bytes()) << ", "
                << HumanBytes(resp.new_bytes()) << " new) into " << resp.commit().repo() << "@"
                << resp.commit().id() << (resp.commit().state() == FINISHED ? "" : " (open)");
      if (resp.skipped_files() > 0) {
        std::cout << "; skipped " << resp.skipped_files() << " files ("
                  << HumanBytes(resp.skipped_bytes()) << ") the commit already held";
      }
      std::cout << "\n";
    }
    return kExitOk;
  }
};

}  // namespace

void AddPutFileCommands(CommandTable* table) {
  table->Add(
      {"put file",
       "Files",
       "put file REPO@REF[:/PATH] -f LOCAL|URL|- [-f ...] [-r [--parallel N]] [--untar] [--append] "
       "[-m MSG] [--force]",
       "  Uploads a local file, a URL, or stdin (-f -) to PATH (default: /NAME of the source).\n"
       "  Several -f upload every one of them beneath PATH (a directory), in one commit.\n"
       "  -r uploads a directory tree beneath PATH (default /) in one commit. --parallel N\n"
       "  sends it over N streams (default 1) into one commit that tusk starts and finishes.\n"
       "  URLs: http://, https://, and s3://BUCKET/KEY; s3://BUCKET/PREFIX/ (or -r) takes every\n"
       "  object beneath the prefix. S3 settings: --s3-endpoint URL (or AWS_ENDPOINT_URL_S3,\n"
       "  AWS_ENDPOINT_URL; default AWS), --s3-region R (or AWS_REGION; default us-east-1),\n"
       "  credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials.\n"
       "  Broken downloads are resumed where the server allows ranges.\n"
       "  --untar stores the regular files of a tar stream (file or stdin; gzip, zstd, xz...)\n"
       "  beneath PATH, in one commit. --append adds to the end of an existing file.\n"
       "  REF is a branch or an open commit id. On a branch without an open commit, one\n"
       "  stream's upload is one commit: all of it lands or none. Into an open commit (or\n"
       "  with --parallel), files land in batches (--batch N files, default 2000); if the\n"
       "  upload stops, the commit stays open, and running the same command again skips\n"
       "  the files it already holds with the same content and finishes the commit if put\n"
       "  started it. A progress line shows on a terminal.\n"
       "  A pipeline's output branch is refused (its files are computed); --force writes\n"
       "  there anyway.\n",
       1,
       1,
       {{"-f", true, true, "--file"},
        {"-r", false, false, "--recursive"},
        {"--parallel", true, false},
        {"--untar", false, false},
        {"--append", false, false},
        {"-m", true, false, "--message"},
        {"--batch", true, false},
        {"--s3-endpoint", true, false},
        {"--s3-region", true, false},
        {"--force", false, false}},
       Run<PutFileCommand, &PutFileCommand::PutFile>});
}

}  // namespace tusk::cli
