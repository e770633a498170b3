// tusk: the command line for tusk. Talks to tuskd over gRPC only.

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "cli/spec_file.h"
#include "common/args.h"
#include "common/grpc_channel.h"
#include "common/grpc_status.h"
#include "common/status.h"
#include "common/version.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "http/s3.h"
#include "http/url_reader.h"
#include "pfs/file_hash.h"
#include "pfs/refs.h"
#include "proto/ingest.grpc.pb.h"
#include "proto/pfs.grpc.pb.h"
#include "proto/pps.grpc.pb.h"

namespace tusk::cli {
namespace {

using tusk::Args;
using tusk::FlagSpec;
using tusk::ParseArgs;

namespace fs = std::filesystem;
using namespace tusk::pfs::v1;  // NOLINT: the API messages
namespace iv1 = tusk::ingest::v1;
namespace ppsv1 = tusk::pps::v1;

// Exit codes. Documented in the help text.
constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNotFound = 3;
constexpr int kExitConflict = 4;
constexpr int kExitUnavailable = 5;
constexpr int kExitCorrupt = 6;

constexpr char kMainHelp[] = R"(tusk: command line for tusk, a versioned data lake

Usage: tusk COMMAND [ARGS] [--address HOST:PORT] [--json]

Repos and branches:
  create repo NAME [--description D]      list repo      inspect repo NAME
  delete repo NAME [--force]
  update repo NAME [--description D] [--keep-last N] [--keep-for 48h] [--keep-all]
  create branch REPO@BRANCH [--head REF]  list branch REPO
  inspect branch REPO@BRANCH              delete branch REPO@BRANCH [--force]
Commits:
  start commit REPO@BRANCH [-m MSG]       (prints the new commit's id)
  finish commit REPO@BRANCH|REPO@ID [-m MSG]
  list commit REPO[@REF] [-n N]           (newest first)
  inspect commit REPO@REF
  diff commit REPO@NEW [REPO@OLD]         (OLD defaults to NEW's parent)
  revert REPO@BRANCH --to REF [-m MSG]    (new commit whose tree equals REF's)
  delete commit REPO@REF                  (a commit nothing depends on)
Files:
  put file REPO@REF[:/PATH] -f LOCAL|URL|- [-r [--parallel N]] [--untar] [--append] [-m MSG]
  get file REPO@REF:/PATH [-o OUT]        (a directory needs -o DIR)
  list file REPO@REF[:/DIR]               glob file REPO@REF:PATTERN
  inspect file REPO@REF:/PATH             delete file REPO@REF:/PATH
Ingest (Kafka topics into micro-commits; run 'tusk-ingest --source NAME'):
  create source NAME --kafka BROKERS --topic T [--topic T2] --repo R [--branch B]
      [--max-records N] [--max-bytes B] [--max-latency 50ms] [--start earliest|latest]
      [--layout partition|hour] [--max-record-bytes B] [--value-format raw|json]
      [--update]   (or -f SPEC.yaml / SPEC.json)
  list source      inspect source NAME      delete source NAME
Pipelines (specs in YAML or JSON, Pachyderm's field names):
  create pipeline -f SPEC      update pipeline -f SPEC [--reprocess]
  list pipeline    inspect pipeline NAME    delete pipeline NAME [--keep-repo]
  stop pipeline NAME           start pipeline NAME
Jobs and datums:
  list job [-p PIPELINE]       inspect job PIPELINE@JOB     wait job PIPELINE@JOB
  list datum PIPELINE@JOB      inspect datum PIPELINE@JOB DATUM
  logs -p PIPELINE [--job JOB] [--datum DATUM] [-f]
  inspect commit REPO@REF --provenance | --subvenance
  wait commitset ID            (until every commit derived from an input commit is done)
Admin:
  fsck                                    (verify every reachable chunk, node and commit)
  gc [--grace 1h] [--rewrite-below 0.5]   (apply retention, delete unreferenced data)
  admin stats                             (object-store requests and cache hits since start)
  version

REF is a branch, a 32-hex-character commit id, or either followed by ^ (parent)
or ~N (N-th ancestor). A put or delete on a branch without an open commit makes
one commit around it; 'put file -r' of a directory is one commit.

Global flags:
  --address HOST:PORT   tuskd address (default: $TUSK_ADDRESS, else 127.0.0.1:1650)
  --json                print the API's messages as JSON, one per line
  -h, --help            help for tusk or for one command

Exit codes: 0 ok, 1 error, 2 bad usage, 3 not found, 4 conflict (exists, open or
finished commit, file/directory clash), 5 tuskd or its object store unreachable
(worth retrying), 6 corrupt data (fsck).
)";

// Metadata of a commit that `put file` started itself: it names the upload
// (local source and destination), so that a rerun of an interrupted put
// resumes it and finishes it, and nothing else joins it.
constexpr const char* kPutMetadataKey = pfs::kUploadOwnerMetadataKey;

const std::map<std::string, std::string> kCommandHelp = {
    {"create repo",
     "tusk create repo NAME [--description D]\n  Creates a repo with a 'master' branch.\n"},
    {"list repo",
     "tusk list repo\n  Lists repos with their size (head of master) and description.\n"},
    {"inspect repo", "tusk inspect repo NAME\n  Shows a repo's details and branches.\n"},
    {"delete repo",
     "tusk delete repo NAME [--force]\n  Deletes a repo. --force also discards open commits.\n"
     "  Its data is freed by the next gc, except what other repos share.\n"},
    {"update repo",
     "tusk update repo NAME [--description D] [--keep-last N] [--keep-for DUR] [--keep-all]\n"
     "  Changes a repo's description or retention. With retention, each branch keeps its\n"
     "  newest N commits and/or those younger than DUR (48h, 30m, 7d); when both are set,\n"
     "  either keeps a commit. Older commits are squashed into their oldest kept child,\n"
     "  which becomes the branch's first commit (its files are unchanged), and commits\n"
     "  computed from a squashed commit name that child instead. Applied every minute\n"
     "  (tuskd --retention-interval) and by 'tusk gc'. --keep-all removes the retention.\n"},
    {"delete commit",
     "tusk delete commit REPO@REF\n  Deletes a finished commit that nothing depends on: no child\n"
     "  commit and no commit computed from it. A branch whose head it is moves back to its\n"
     "  parent. Its data is freed by the next gc.\n"},
    {"admin stats",
     "tusk admin stats\n  Requests tuskd made to its object store (PUT, GET, HEAD, LIST, DELETE,\n"
     "  retries, bytes) and its local cache's hits and misses, since it started.\n"
     "  A local-directory store does not count requests.\n"},
    {"gc",
     "tusk gc [--grace DUR] [--rewrite-below F]\n  Applies retention, writes a checkpoint of the "
     "metadata to the object store,\n  then deletes the chunks, tree nodes and packs that no "
     "commit, open commit or\n  pipeline datum references. Packs younger than --grace (default: "
     "tuskd's\n  --gc-grace, 1h) are kept, so uploads in progress are safe. Packs whose live\n"
     "  bytes are below F of their size (default 0.5) are rewritten. tuskd also runs\n"
     "  this every --gc-interval.\n"},
    {"create branch",
     "tusk create branch REPO@BRANCH [--head REF]\n  Creates a branch, or moves it to REF "
     "(it must have no open commit).\n  A branch from an old commit shares all of its data.\n"},
    {"list branch", "tusk list branch REPO\n"},
    {"inspect branch", "tusk inspect branch REPO@BRANCH\n"},
    {"delete branch",
     "tusk delete branch REPO@BRANCH [--force]\n  Commits stay reachable by id.\n"},
    {"start commit",
     "tusk start commit REPO@BRANCH [-m MSG]\n  Opens a commit on the branch (one per branch) and "
     "prints its id.\n  Writes to REPO@BRANCH or REPO@ID go into it until 'finish commit'.\n"},
    {"finish commit",
     "tusk finish commit REPO@BRANCH|REPO@ID [-m MSG]\n  Applies the commit's writes and moves the "
     "branch head, atomically and durably.\n"},
    {"list commit",
     "tusk list commit REPO[@REF] [-n N]\n  History of REF (with the branch's open "
     "commit first), or every commit of the repo; newest first.\n"},
    {"inspect commit", "tusk inspect commit REPO@REF\n"},
    {"diff commit",
     "tusk diff commit REPO@NEW [REPO@OLD]\n  Files added (+), modified (~) and deleted (-) "
     "between OLD (default: NEW's parent) and NEW.\n"},
    {"revert",
     "tusk revert REPO@BRANCH --to REF [-m MSG]\n  Makes a new commit on BRANCH whose "
     "files equal REF's. History is kept.\n"},
    {"put file",
     "tusk put file REPO@REF[:/PATH] -f LOCAL|URL|- [-r [--parallel N]] [--untar] [--append] [-m "
     "MSG]\n"
     "  Uploads a local file, a URL, or stdin (-f -) to PATH (default: /NAME of the source).\n"
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
     "  started it. A progress line shows on a terminal.\n"},
    {"get file",
     "tusk get file REPO@REF:/PATH [-o OUT]\n  Writes a file to stdout or OUT; a directory's tree "
     "is written beneath directory OUT.\n"},
    {"list file",
     "tusk list file REPO@REF[:/DIR]\ntusk list file REPO@BRANCH|REPO@ID --staged\n"
     "  --staged lists what an open commit holds so far (closed upload streams), with hashes.\n"},
    {"glob file",
     "tusk glob file REPO@REF:PATTERN\n  PATTERN: * ? [abc] {a,b} within a path "
     "component, ** across components.\n"},
    {"inspect file", "tusk inspect file REPO@REF:/PATH\n"},
    {"delete file", "tusk delete file REPO@REF:/PATH\n  Deletes a file or a directory tree.\n"},
    {"fsck",
     "tusk fsck\n  Reads and verifies every reachable commit, tree node, chunk list and "
     "chunk. Exit 6 if anything is wrong.\n"},
    {"version", "tusk version\n  Prints the client's and the server's version.\n"},
    {"create source",
     "tusk create source NAME --kafka BROKERS --topic T [--topic T2 ...] --repo R [--branch B]\n"
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
     "  field names of --json output (max_latency_ms: 50, kafka: {topics: [t]}).\n"},
    {"list source", "tusk list source\n  Sources with their repo, lag and ingest rate.\n"},
    {"inspect source",
     "tusk inspect source NAME\n  Per partition: the offset the branch head records, Kafka's high\n"
     "  watermark, lag and records lost to retention; the members running it.\n"},
    {"delete source",
     "tusk delete source NAME\n  Stops ingest (members exit); the repo and its commits stay.\n"},
    {"create pipeline",
     "tusk create pipeline -f SPEC.yaml|SPEC.json|-\n"
     "  Creates the pipelines in a spec file (Pachyderm's field names: pipeline.name,\n"
     "  transform.cmd, input.pfs {repo, branch, glob, name}, cross, union, join (join_on,\n"
     "  outer_join), group (group_by), parallelism_spec.constant, datum_tries,\n"
     "  datum_timeout, job_timeout, output_branch). A field tusk does not support, a bad\n"
     "  glob, an unknown input repo or a cycle is an error naming it. The output repo\n"
     "  has the pipeline's name.\n"},
    {"update pipeline",
     "tusk update pipeline -f SPEC [--reprocess]\n  Replaces a pipeline's spec (a new version).\n"},
    {"list pipeline", "tusk list pipeline\n"},
    {"inspect pipeline", "tusk inspect pipeline NAME\n"},
    {"delete pipeline",
     "tusk delete pipeline NAME [--keep-repo]\n  Deletes a pipeline and its output repo (unless "
     "--keep-repo).\n  Refused while another pipeline reads its output.\n"},
    {"stop pipeline",
     "tusk stop pipeline NAME\n  New input commits wait until 'start pipeline'.\n"},
    {"start pipeline", "tusk start pipeline NAME\n"},
    {"list job",
     "tusk list job [-p PIPELINE] [-n N]\n  Jobs, newest first: state, datums (processed / skipped "
     "/ failed "
     "of total),\n  duration and input commits.\n"},
    {"inspect job",
     "tusk inspect job PIPELINE@JOB\n  JOB is a job id or a unique prefix of one.\n"},
    {"wait job",
     "tusk wait job PIPELINE@JOB\n  Waits until the job is done, with a progress bar of datums on "
     "a "
     "terminal.\n  Exit code 0 if it succeeded, 1 if it failed.\n"},
    {"list datum",
     "tusk list datum PIPELINE@JOB\n  The datums the job touched (new, changed, failed or "
     "removed); "
     "unchanged\n  datums are counted as skipped in 'inspect job'.\n"},
    {"inspect datum",
     "tusk inspect datum PIPELINE@JOB DATUM\n  DATUM is a datum id or a unique prefix.\n"},
    {"logs",
     "tusk logs -p PIPELINE [--job JOB] [--datum DATUM] [-f]\n  The logs (stdout and stderr) of "
     "datum "
     "attempts; -f keeps following.\n"},
    {"wait commitset",
     "tusk wait commitset ID\n  Waits until every commit of the commit set (an input commit and "
     "all "
     "that\n  pipelines derive from it) is finished, then lists them. Exit code 1 if a\n  job of "
     "the "
     "set failed.\n"},
};

int ExitCodeFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return kExitError;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      return kExitConflict;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnavailable;
    case absl::StatusCode::kDataLoss:
      return kExitCorrupt;
    default:
      return kExitError;
  }
}

std::string HumanBytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? absl::StrCat(n, " B") : absl::StrFormat("%.1f %s", v, units[u]);
}

std::string Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  time_t secs = static_cast<time_t>(t.seconds());
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string Short(const std::string& id) { return id.empty() ? "-" : id; }

// Prints rows as aligned columns.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print() const {
    std::vector<size_t> width;
    for (const auto& r : rows_) {
      for (size_t i = 0; i < r.size(); ++i) {
        if (width.size() <= i) width.push_back(0);
        width[i] = std::max(width[i], r[i].size());
      }
    }
    for (const auto& r : rows_) {
      std::string line;
      for (size_t i = 0; i < r.size(); ++i) {
        line += r[i];
        if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
      }
      std::cout << line << "\n";
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

// Progress on a terminal: bytes, files, rate, ETA. Quiet when stderr is not a tty.
// A progress line on stderr (bytes, files, rate, ETA), redrawn at most 5 times
// a second; silent when stderr is not a terminal. Thread-safe.
class Progress {
 public:
  Progress(std::string verb, uint64_t total_bytes, uint64_t total_files)
      : verb_(std::move(verb)),
        total_bytes_(total_bytes),
        total_files_(total_files),
        enabled_(::isatty(STDERR_FILENO) == 1),
        start_(std::chrono::steady_clock::now()) {}
  void Add(uint64_t bytes, uint64_t files) {
    bytes_ += bytes;
    files_ += files;
    if (!enabled_) return;
    std::lock_guard<std::mutex> l(mu_);
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    Draw(false);
  }
  // The total, once known (a download's length).
  void SetTotal(uint64_t bytes) { total_bytes_ = bytes; }
  void Done() {
    std::lock_guard<std::mutex> l(mu_);
    if (enabled_ && drawn_) Draw(true);
  }

 private:
  void Draw(bool final) {
    drawn_ = true;
    uint64_t bytes = bytes_, files = files_, total_bytes = total_bytes_;
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    double rate = secs > 0 ? bytes / secs : 0;
    std::string line = absl::StrCat(verb_, " ", HumanBytes(bytes));
    if (total_bytes > 0) absl::StrAppend(&line, " / ", HumanBytes(total_bytes));
    absl::StrAppend(&line, "  ", files);
    if (total_files_ > 0) absl::StrAppend(&line, "/", total_files_);
    absl::StrAppend(&line, " files  ", HumanBytes(static_cast<uint64_t>(rate)), "/s");
    if (!final && total_bytes > bytes && rate > 0) {
      absl::StrAppend(&line, "  ETA ", static_cast<int>((total_bytes - bytes) / rate), "s");
    }
    std::cerr << "\r\033[K" << line << (final ? "\n" : "") << std::flush;
  }

  std::string verb_;
  std::atomic<uint64_t> total_bytes_;
  const uint64_t total_files_;
  std::atomic<uint64_t> bytes_{0}, files_{0};
  const bool enabled_;
  std::mutex mu_;
  bool drawn_ = false;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
};

// Reads the entries of a tar (or tar.gz, .zst, ... anything libarchive reads)
// from a file descriptor, one regular file at a time.
class TarReader {
 public:
  explicit TarReader(int fd) : a_(archive_read_new()) {
    archive_read_support_filter_all(a_);
    archive_read_support_format_all(a_);
    open_ = archive_read_open_fd(a_, fd, 1 << 20) == ARCHIVE_OK;
  }
  ~TarReader() { archive_read_free(a_); }

  // The next regular file's path (relative, normalized), or "" at the end.
  // Directories are implied by paths; links and devices are counted in skipped().
  absl::StatusOr<std::string> Next() {
    if (!open_) return Error("cannot read the archive");
    for (;;) {
      archive_entry* e = nullptr;
      int r = archive_read_next_header(a_, &e);
      if (r == ARCHIVE_EOF) return std::string();
      if (r < ARCHIVE_WARN) return Error("bad archive");
      const char* name = archive_entry_pathname(e);
      std::string path = name ? name : "";
      if (archive_entry_filetype(e) != AE_IFREG) {
        if (archive_entry_filetype(e) != AE_IFDIR) ++skipped_;
        continue;
      }
      if (archive_entry_hardlink(e)) {
        ++skipped_;
        continue;
      }
      // Entries are relative to the destination: drop "./" and leading "/",
      // refuse anything that climbs out of it.
      std::vector<std::string> parts;
      for (absl::string_view c : absl::StrSplit(path, '/', absl::SkipEmpty())) {
        if (c == ".") continue;
        if (c == "..") {
          return absl::InvalidArgumentError(
              absl::StrCat("archive entry '", path, "' climbs out of the destination (..)"));
        }
        parts.emplace_back(c);
      }
      if (parts.empty()) continue;
      return absl::StrJoin(parts, "/");
    }
  }
  // Reads the current entry's data; 0 at its end.
  absl::StatusOr<size_t> Read(char* buf, size_t n) {
    la_ssize_t got = archive_read_data(a_, buf, n);
    if (got < 0) return Error("reading an archive entry");
    return static_cast<size_t>(got);
  }
  uint64_t skipped() const { return skipped_; }

 private:
  absl::Status Error(absl::string_view what) {
    const char* msg = archive_error_string(a_);
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", msg ? msg : "unknown error"));
  }
  archive* a_;
  bool open_ = false;
  uint64_t skipped_ = 0;
};

class Cli {
 public:
  Cli(const Args& args, std::unique_ptr<API::Stub> stub,
      std::unique_ptr<iv1::Sources::Stub> sources, std::unique_ptr<ppsv1::Pps::Stub> pps)
      : args_(args), stub_(std::move(stub)), sources_(std::move(sources)), pps_(std::move(pps)) {
    json_ = args.Has("--json");
  }

  int Run(const std::string& command) {
    static const std::map<std::string, int (Cli::*)()> kCommands = {
        {"version", &Cli::Version},
        {"create repo", &Cli::CreateRepo},
        {"list repo", &Cli::ListRepo},
        {"inspect repo", &Cli::InspectRepo},
        {"delete repo", &Cli::DeleteRepo},
        {"update repo", &Cli::UpdateRepo},
        {"delete commit", &Cli::DeleteCommit},
        {"gc", &Cli::Gc},
        {"admin stats", &Cli::AdminStats},
        {"create branch", &Cli::CreateBranch},
        {"list branch", &Cli::ListBranch},
        {"inspect branch", &Cli::InspectBranch},
        {"delete branch", &Cli::DeleteBranch},
        {"start commit", &Cli::StartCommit},
        {"finish commit", &Cli::FinishCommit},
        {"list commit", &Cli::ListCommit},
        {"inspect commit", &Cli::InspectCommit},
        {"diff commit", &Cli::DiffCommit},
        {"revert", &Cli::Revert},
        {"put file", &Cli::PutFile},
        {"get file", &Cli::GetFile},
        {"list file", &Cli::ListFile},
        {"glob file", &Cli::GlobFile},
        {"inspect file", &Cli::InspectFile},
        {"delete file", &Cli::DeleteFile},
        {"fsck", &Cli::Fsck},
        {"create source", &Cli::CreateSource},
        {"list source", &Cli::ListSource},
        {"inspect source", &Cli::InspectSource},
        {"delete source", &Cli::DeleteSource},
        {"create pipeline", &Cli::CreatePipeline},
        {"update pipeline", &Cli::UpdatePipeline},
        {"list pipeline", &Cli::ListPipeline},
        {"inspect pipeline", &Cli::InspectPipeline},
        {"delete pipeline", &Cli::DeletePipeline},
        {"stop pipeline", &Cli::StopPipeline},
        {"start pipeline", &Cli::StartPipeline},
        {"list job", &Cli::ListJob},
        {"inspect job", &Cli::InspectJob},
        {"wait job", &Cli::WaitJob},
        {"list datum", &Cli::ListDatum},
        {"inspect datum", &Cli::InspectDatum},
        {"logs", &Cli::Logs},
        {"wait commitset", &Cli::WaitCommitSet},
    };
    auto it = kCommands.find(command);
    if (it == kCommands.end()) return UsageError("unknown command '" + command + "'");
    // Names, refs, paths and messages travel in protobuf strings, which must
    // be UTF-8; local paths (-f, -o) are the file system's business.
    for (const auto& p : args_.positional) {
      if (auto st = pfs::CheckUtf8("argument", p); !st.ok())
        return UsageError(std::string(st.message()));
    }
    for (const auto& [flag, values] : args_.values) {
      if (flag == "-f" || flag == "-o") continue;
      for (const auto& v : values) {
        if (auto st = pfs::CheckUtf8(flag, v); !st.ok())
          return UsageError(std::string(st.message()));
      }
    }
    return (this->*(it->second))();
  }

  static int UsageError(const std::string& msg) {
    std::cerr << "tusk: " << msg << "\nRun 'tusk --help' for usage.\n";
    return kExitUsage;
  }

 private:
  // --- helpers ------------------------------------------------------------

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
    return CallOn(stub_.get(), method, req, human);
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
    auto reader = (stub_.get()->*method)(&ctx, req);
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

  int Version() {
    VersionResponse v;
    auto ctx = Ctx();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Status s = stub_->Version(ctx.get(), VersionRequest(), &v);
    if (json_) {
      VersionResponse client;
      client.set_version(kTuskVersion);
      client.set_api("tusk.pfs.v1");
      // One line: {"client": {...}, "server": {...}} (no "server" if unreachable).
      std::cout << "{\"client\":" << Json(client);
      if (s.ok()) std::cout << ",\"server\":" << Json(v);
      std::cout << "}\n";
    } else {
      std::cout << "tusk " << kTuskVersion << "\n";
      if (s.ok()) std::cout << "tuskd " << v.version() << " (" << address_ << ")\n";
    }
    if (!s.ok()) return Fail(s);
    return kExitOk;
  }

  int CreateRepo() {
    if (!NeedPositional(1, "repo name")) return kExitUsage;
    CreateRepoRequest req;
    req.set_name(args_.positional[0]);
    req.set_description(args_.Get("--description"));
    return Call(&API::Stub::CreateRepo, req,
                [&](const RepoInfo& r) { std::cout << "created repo " << r.name() << "\n"; });
  }

  int ListRepo() {
    if (!NeedPositional(0, "")) return kExitUsage;
    ListRepoResponse resp;
    auto ctx = Ctx();
    grpc::Status s = stub_->ListRepo(ctx.get(), ListRepoRequest(), &resp);
    if (!s.ok()) return Fail(s);
    if (json_) {
      for (const auto& r : resp.repos()) PrintJson(r);
      return kExitOk;
    }
    Table t({"NAME", "CREATED", "SIZE (MASTER)", "DESCRIPTION"});
    for (const auto& r : resp.repos()) {
      t.Add({r.name(), Time(r.created()), HumanBytes(r.size_bytes()), r.description()});
    }
    t.Print();
    return kExitOk;
  }

  int InspectRepo() {
    if (!NeedPositional(1, "repo name")) return kExitUsage;
    InspectRepoRequest req;
    req.set_name(args_.positional[0]);
    return Call(&API::Stub::InspectRepo, req, [&](const RepoInfo& r) {
      std::cout << "Name: " << r.name() << "\nDescription: " << r.description()
                << "\nCreated: " << Time(r.created())
                << "\nSize of master: " << HumanBytes(r.size_bytes())
                << "\nBranches: " << absl::StrJoin(r.branches(), ", ")
                << "\nRetention: " << RetentionText(r) << "\n";
    });
  }

  int DeleteRepo() {
    if (!NeedPositional(1, "repo name")) return kExitUsage;
    DeleteRepoRequest req;
    req.set_name(args_.positional[0]);
    req.set_force(args_.Has("--force"));
    return Call(&API::Stub::DeleteRepo, req, [&](const DeleteRepoResponse& resp) {
      std::cout << "deleted repo " << req.name() << "\n";
    });
  }

  static std::string RetentionText(const RepoInfo& r) {
    if (!r.has_retention()) return "all history";
    std::vector<std::string> parts;
    if (r.retention().keep_last() > 0)
      parts.push_back(absl::StrCat("last ", r.retention().keep_last(), " commits"));
    int64_t ns = google::protobuf::util::TimeUtil::DurationToNanoseconds(r.retention().keep_for());
    if (ns > 0)
      parts.push_back(
          absl::StrCat("commits younger than ", absl::FormatDuration(absl::Nanoseconds(ns))));
    return absl::StrCat("keep ", absl::StrJoin(parts, " or "), " per branch");
  }

  // "48h", "90s", "7d" (days are not in absl's syntax).
  static bool ParseHumanDuration(const std::string& s, absl::Duration* d) {
    int64_t days = 0;
    if (s.size() > 1 && s.back() == 'd' && absl::SimpleAtoi(s.substr(0, s.size() - 1), &days)) {
      *d = absl::Hours(24 * days);
      return days >= 0;
    }
    if (s == "0") {
      *d = absl::ZeroDuration();
      return true;
    }
    return absl::ParseDuration(s, d) && *d >= absl::ZeroDuration();
  }

  int UpdateRepo() {
    if (!NeedPositional(1, "repo name")) return kExitUsage;
    UpdateRepoRequest req;
    req.set_name(args_.positional[0]);
    if (args_.Has("--description")) req.set_description(args_.Get("--description"));
    bool retention = args_.Has("--keep-last") || args_.Has("--keep-for") || args_.Has("--keep-all");
    if (args_.Has("--keep-all") && (args_.Has("--keep-last") || args_.Has("--keep-for"))) {
      return UsageError("--keep-all removes the retention; it goes without --keep-last/--keep-for");
    }
    if (args_.Has("--keep-last")) {
      uint64_t n = 0;
      if (!absl::SimpleAtoi(args_.Get("--keep-last"), &n) || n == 0) {
        return UsageError("--keep-last needs a number of commits, at least 1");
      }
      req.mutable_retention()->set_keep_last(n);
    }
    if (args_.Has("--keep-for")) {
      absl::Duration d;
      if (!ParseHumanDuration(args_.Get("--keep-for"), &d) || d <= absl::ZeroDuration()) {
        return UsageError("--keep-for needs a duration like 48h, 30m or 7d, not '" +
                          args_.Get("--keep-for") + "'");
      }
      *req.mutable_retention()->mutable_keep_for() =
          google::protobuf::util::TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(d));
    }
    if (retention && !req.has_retention()) req.mutable_retention();  // --keep-all: empty
    if (!req.has_description() && !retention) {
      return UsageError("update repo needs --description, --keep-last, --keep-for or --keep-all");
    }
    return Call(&API::Stub::UpdateRepo, req, [&](const RepoInfo& r) {
      std::cout << "updated repo " << r.name() << ": " << RetentionText(r) << "\n";
    });
  }

  int DeleteCommit() {
    if (!NeedPositional(1, "REPO@REF")) return kExitUsage;
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    if (!spec->has_ref || spec->has_path) return UsageError("delete commit needs REPO@REF");
    DeleteCommitRequest req;
    req.set_repo(spec->repo);
    req.set_ref(spec->ref);
    return Call(&API::Stub::DeleteCommit, req, [&](const DeleteCommitResponse& resp) {
      std::cout << "deleted commit " << spec->repo << "@" << spec->ref << "\n";
      for (const auto& b : resp.moved()) {
        std::cout << "branch " << b.repo() << "@" << b.name() << " -> "
                  << (b.head().empty() ? "(no commits)" : b.head()) << "\n";
      }
    });
  }

  int AdminStats() {
    if (!NeedPositional(0, "")) return kExitUsage;
    return Call(&API::Stub::Stats, StatsRequest(), [&](const StatsResponse& r) {
      std::cout << "Object store: " << r.object_store() << "\nRequests: " << r.puts() << " PUT, "
                << r.gets() << " GET, " << r.heads() << " HEAD, " << r.lists() << " LIST, "
                << r.deletes() << " DELETE, " << r.retries()
                << " retried\nBytes: " << HumanBytes(r.bytes_written()) << " written, "
                << HumanBytes(r.bytes_read()) << " read\nCache: " << r.cache_hits() << " hits, "
                << r.cache_misses() << " misses\n";
    });
  }

  int Gc() {
    if (!NeedPositional(0, "")) return kExitUsage;
    GcRequest req;
    if (args_.Has("--grace")) {
      absl::Duration d;
      if (!ParseHumanDuration(args_.Get("--grace"), &d)) {
        return UsageError("--grace needs a duration like 1h or 0s, not '" + args_.Get("--grace") +
                          "'");
      }
      *req.mutable_grace() =
          google::protobuf::util::TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(d));
    }
    if (args_.Has("--rewrite-below")) {
      double f = 0;
      if (!absl::SimpleAtod(args_.Get("--rewrite-below"), &f) || f < 0 || f > 1) {
        return UsageError("--rewrite-below needs a fraction from 0 to 1");
      }
      req.set_rewrite_below(f);
    }
    if (!json_) std::cerr << "collecting garbage...\n";
    return Call(&API::Stub::Gc, req, [&](const GcResponse& r) {
      std::cout << "squashed " << r.commits_squashed() << " commits by retention; "
                << r.live_blobs() << " live blobs (" << HumanBytes(r.bytes_live())
                << " in old packs); deleted " << r.packs_deleted() << " of " << r.packs()
                << " packs, rewrote " << r.packs_rewritten() << ", freed "
                << HumanBytes(r.bytes_deleted()) << " in "
                << absl::FormatDuration(absl::Nanoseconds(
                       google::protobuf::util::TimeUtil::DurationToNanoseconds(r.took())))
                << "\n";
    });
  }

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

  int CreateBranch() {
    if (!NeedPositional(1, "REPO@BRANCH")) return kExitUsage;
    auto spec = BranchSpec();
    if (!spec.ok()) return Fail(spec.status());
    CreateBranchRequest req;
    req.set_repo(spec->repo);
    req.set_branch(spec->ref);
    req.set_head(args_.Get("--head"));
    return Call(&API::Stub::CreateBranch, req, [&](const BranchInfo& b) {
      std::cout << "branch " << b.repo() << "@" << b.name() << " -> " << Short(b.head()) << "\n";
    });
  }

  int ListBranch() {
    if (!NeedPositional(1, "repo name")) return kExitUsage;
    ListBranchRequest req;
    req.set_repo(args_.positional[0]);
    ListBranchResponse resp;
    auto ctx = Ctx();
    grpc::Status s = stub_->ListBranch(ctx.get(), req, &resp);
    if (!s.ok()) return Fail(s);
    if (json_) {
      for (const auto& b : resp.branches()) PrintJson(b);
      return kExitOk;
    }
    Table t({"BRANCH", "HEAD", "OPEN COMMIT"});
    for (const auto& b : resp.branches())
      t.Add({b.name(), Short(b.head()), Short(b.open_commit())});
    t.Print();
    return kExitOk;
  }

  int InspectBranch() {
    if (!NeedPositional(1, "REPO@BRANCH")) return kExitUsage;
    auto spec = BranchSpec();
    if (!spec.ok()) return Fail(spec.status());
    InspectBranchRequest req;
    req.set_repo(spec->repo);
    req.set_branch(spec->ref);
    return Call(&API::Stub::InspectBranch, req, [&](const BranchInfo& b) {
      std::cout << "Branch: " << b.repo() << "@" << b.name() << "\nHead: " << Short(b.head())
                << "\nOpen commit: " << Short(b.open_commit()) << "\nCreated: " << Time(b.created())
                << "\n";
      auto refs = [](const auto& list) {
        std::vector<std::string> out;
        for (const auto& r : list) out.push_back(r.repo() + "@" + r.name());
        return out.empty() ? std::string("-") : absl::StrJoin(out, ", ");
      };
      std::cout << "Provenance: " << refs(b.provenance())
                << "\nSubvenance: " << refs(b.subvenance()) << "\n";
    });
  }

  int DeleteBranch() {
    if (!NeedPositional(1, "REPO@BRANCH")) return kExitUsage;
    auto spec = BranchSpec();
    if (!spec.ok()) return Fail(spec.status());
    DeleteBranchRequest req;
    req.set_repo(spec->repo);
    req.set_branch(spec->ref);
    req.set_force(args_.Has("--force"));
    return Call(&API::Stub::DeleteBranch, req, [&](const DeleteBranchResponse& resp) {
      std::cout << "deleted branch " << spec->repo << "@" << spec->ref << "\n";
    });
  }

  int StartCommit() {
    if (!NeedPositional(1, "REPO@BRANCH")) return kExitUsage;
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    StartCommitRequest req;
    req.set_repo(spec->repo);
    req.set_branch(spec->ref);
    req.set_message(args_.Get("-m"));
    req.set_origin(USER);
    return Call(&API::Stub::StartCommit, req,
                [&](const CommitInfo& c) { std::cout << c.id() << "\n"; });
  }

  int FinishCommit() {
    if (!NeedPositional(1, "REPO@BRANCH or REPO@ID")) return kExitUsage;
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    FinishCommitRequest req;
    req.set_repo(spec->repo);
    req.set_ref(spec->ref);
    req.set_message(args_.Get("-m"));
    return Call(&API::Stub::FinishCommit, req, [&](const CommitInfo& c) {
      std::cout << "finished commit " << c.repo() << "@" << c.id() << " (" << c.file_count()
                << " files, " << HumanBytes(c.size_bytes()) << ")\n";
    });
  }

  int ListCommit() {
    if (!NeedPositional(1, "REPO[@REF]")) return kExitUsage;
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    ListCommitRequest req;
    req.set_repo(spec->repo);
    if (spec->has_ref) req.set_ref(spec->ref);
    if (args_.Has("-n")) {
      uint64_t n = 0;
      if (!absl::SimpleAtoi(args_.Get("-n"), &n)) return UsageError("-n needs a number");
      req.set_limit(n);
    }
    Table t({"ID", "BRANCH", "STATE", "STARTED", "SIZE", "FILES", "MESSAGE"});
    int rc = Stream(&API::Stub::ListCommit, req, [&](const CommitInfo& c) {
      if (json_) {
        PrintJson(c);
      } else {
        t.Add({c.id(), c.branch(), CommitState_Name(c.state()), Time(c.started()),
               HumanBytes(c.size_bytes()), absl::StrCat(c.file_count()), c.message()});
      }
    });
    if (rc == kExitOk && !json_) t.Print();
    return rc;
  }

  int InspectCommit() {
    if (!NeedPositional(1, "REPO@REF")) return kExitUsage;
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    InspectCommitRequest req;
    req.set_repo(spec->repo);
    req.set_ref(spec->ref);
    CommitInfo c;
    auto ctx = Ctx();
    grpc::Status s = stub_->InspectCommit(ctx.get(), req, &c);
    if (!s.ok()) return Fail(s);
    bool prov = args_.Has("--provenance"), sub = args_.Has("--subvenance");
    if (!prov && !sub) {
      PrintCommit(c);
      return kExitOk;
    }
    // The whole tree of commits it came from (or that came from it).
    std::set<std::string> seen;
    std::function<int(const CommitInfo&, int)> walk = [&](const CommitInfo& at, int depth) -> int {
      if (!seen.insert(at.repo() + "@" + at.id()).second) return kExitOk;
      if (json_) {
        PrintJson(at);
      } else {
        std::cout << std::string(depth * 2, ' ') << at.repo() << "@" << at.id() << " ("
                  << at.branch() << ", " << CommitState_Name(at.state())
                  << (at.error().empty() ? "" : ", failed: " + at.error()) << ")\n";
      }
      const auto& refs = prov ? at.provenance() : at.subvenance();
      for (const auto& r : refs) {
        InspectCommitRequest next;
        next.set_repo(r.repo());
        next.set_ref(r.id());
        CommitInfo nc;
        auto nctx = Ctx();
        grpc::Status ns = stub_->InspectCommit(nctx.get(), next, &nc);
        if (!ns.ok()) return Fail(ns);
        if (int rc = walk(nc, depth + 1); rc != kExitOk) return rc;
      }
      return kExitOk;
    };
    return walk(c, 0);
  }

  int DiffCommit() {
    if (args_.positional.empty() || args_.positional.size() > 2) {
      return UsageError("diff commit takes REPO@NEW [REPO@OLD]");
    }
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    DiffCommitRequest req;
    req.set_repo(spec->repo);
    req.set_new_ref(spec->ref);
    if (args_.positional.size() == 2) {
      auto old = Spec(1);
      if (!old.ok()) return Fail(old.status());
      if (old->repo != spec->repo) return UsageError("diff commit compares commits of one repo");
      req.set_old_ref(old->ref);
    }
    return Stream(&API::Stub::DiffCommit, req, [&](const FileDiff& d) {
      if (json_) return PrintJson(d);
      switch (d.change()) {
        case FileDiff::ADDED:
          std::cout << "+ " << d.path() << " (" << HumanBytes(d.new_size()) << ")\n";
          break;
        case FileDiff::DELETED:
          std::cout << "- " << d.path() << " (" << HumanBytes(d.old_size()) << ")\n";
          break;
        default:
          std::cout << "~ " << d.path() << " (" << HumanBytes(d.old_size()) << " -> "
                    << HumanBytes(d.new_size()) << ")\n";
      }
    });
  }

  int Revert() {
    if (!NeedPositional(1, "REPO@BRANCH")) return kExitUsage;
    if (!args_.Has("--to")) return UsageError("revert needs --to REF");
    auto spec = BranchSpec();
    if (!spec.ok()) return Fail(spec.status());
    RevertRequest req;
    req.set_repo(spec->repo);
    req.set_branch(spec->ref);
    std::string to = args_.Get("--to");
    // Accept both REF and REPO@REF.
    if (size_t at = to.find('@'); at != std::string::npos) {
      if (to.substr(0, at) != spec->repo)
        return UsageError("--to must name a commit of the same repo");
      to = to.substr(at + 1);
    }
    req.set_to(to);
    req.set_message(args_.Get("-m"));
    return Call(&API::Stub::Revert, req, [&](const CommitInfo& c) {
      std::cout << "reverted " << c.repo() << "@" << c.branch() << " to " << to << " in commit "
                << c.id() << "\n";
    });
  }

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

  // One thing to upload: a local file, stdin ("-"), or a URL.
  struct Source {
    std::string src;
    std::string dest;
    uint64_t size = 0;  // 0 when unknown (stdin, a single URL)
    bool url = false;
  };

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

  http::S3Options S3OptionsFromArgs() {
    http::S3Options o;
    auto env = [](const char* name) -> std::string {
      const char* v = std::getenv(name);
      return v ? v : "";
    };
    o.endpoint = args_.Get("--s3-endpoint", env("AWS_ENDPOINT_URL_S3"));
    if (o.endpoint.empty()) o.endpoint = env("AWS_ENDPOINT_URL");
    o.region = args_.Get("--s3-region", env("AWS_REGION"));
    if (o.region.empty()) o.region = env("AWS_DEFAULT_REGION");
    if (o.region.empty()) o.region = "us-east-1";
    return o;
  }

  // The sources of `-f URL`: one object or page, or (s3:// with -r or a
  // trailing '/') every object beneath a prefix.
  absl::StatusOr<std::vector<Source>> UrlSources(const pfs::FileSpec& spec, const std::string& url,
                                                 bool dest_is_dir, const http::S3Options& s3) {
    std::string base = spec.has_path ? spec.path : "/";
    std::vector<Source> out;
    if (absl::StartsWith(url, "s3://")) {
      ASSIGN_OR_RETURN(http::S3Url loc, http::ParseS3Url(url));
      if (args_.Has("-r") || loc.key.empty() || loc.key.back() == '/') {
        std::string prefix = loc.key;
        if (!prefix.empty() && prefix.back() != '/') prefix += '/';
        ASSIGN_OR_RETURN(auto client, http::S3Client::Create(s3));
        RETURN_IF_ERROR(client->List(loc.bucket, prefix, [&](const http::ObjectInfo& o) {
          if (o.key.empty() || o.key.back() == '/') return absl::OkStatus();  // folder markers
          out.push_back({absl::StrCat("s3://", loc.bucket, "/", o.key),
                         pfs::JoinPath(base, o.key.substr(prefix.size())), o.size, true});
          return absl::OkStatus();
        }));
        if (out.empty()) return absl::NotFoundError(absl::StrCat("no objects under ", url));
        return out;
      }
    }
    std::string dest = spec.path;
    if (!spec.has_path || dest == "/" || dest_is_dir) {
      // The last segment of the URL's path, without its query.
      std::string path = url.substr(url.find("://") + 3);
      path = path.substr(0, path.find_first_of("?#"));
      std::string name =
          path.find('/') == std::string::npos ? "" : path.substr(path.rfind('/') + 1);
      if (name.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(url, " has no file name: give a destination, REPO@REF:/PATH"));
      }
      dest = pfs::JoinPath(spec.has_path ? spec.path : "/", name);
    }
    out.push_back({url, dest, 0, true});
    return out;
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
  static std::string UploadName(const pfs::FileSpec& spec, const std::string& local) {
    std::string src = local;
    if (local != "-" && !http::UrlReader::IsUrl(local)) {
      std::error_code ec;
      fs::path abs = fs::absolute(local, ec);
      if (!ec) src = abs.lexically_normal().string();
    }
    return absl::StrCat("put file ", src, " -> ", spec.repo, "@", spec.ref, ":",
                        spec.has_path ? spec.path : "/");
  }

  int PutFile() {
    if (!NeedPositional(1, "REPO@REF[:/PATH]")) return kExitUsage;
    auto spec = Spec(0);
    if (!spec.ok()) return Fail(spec.status());
    if (!args_.Has("-f")) return UsageError("put file needs -f LOCAL|URL (or -f - for stdin)");
    std::string local = args_.Get("-f");
    bool recursive = args_.Has("-r");
    bool untar = args_.Has("--untar");
    bool append = args_.Has("--append");
    bool is_url = http::UrlReader::IsUrl(local);
    bool dest_is_dir = !args_.positional[0].empty() && args_.positional[0].back() == '/';
    // One stream by default: a single stream's writes land all at once or not
    // at all. Several streams share an open commit that an interruption leaves
    // open with the files that arrived.
    int parallel = 1;
    if (args_.Has("--parallel") &&
        (!absl::SimpleAtoi(args_.Get("--parallel"), &parallel) || parallel < 1 || parallel > 64)) {
      return UsageError("--parallel needs a number of streams from 1 to 64");
    }
    if (untar && recursive) return UsageError("--untar and -r do not go together");
    if (untar && append) return UsageError("--untar and --append do not go together");
    if (untar && is_url)
      return UsageError("--untar reads a local file or stdin; pipe a download into -f -");
    if (recursive && is_url && !absl::StartsWith(local, "s3://")) {
      return UsageError("-r with a URL needs an s3:// prefix");
    }

    if (untar) return PutTar(*spec, local);

    std::vector<Source> sources;
    http::S3Options s3 = S3OptionsFromArgs();
    if (is_url) {
      auto creds = http::CredentialsFromEnvironment();
      if (!creds.ok()) return Fail(creds.status());
      s3.credentials = *creds;
      auto found = UrlSources(*spec, local, dest_is_dir, s3);
      if (!found.ok()) return Fail(found.status());
      sources = std::move(*found);
    } else if (local == "-") {
      if (!spec->has_path || spec->path == "/") {
        return UsageError("put file from stdin needs a destination path: REPO@REF:/PATH");
      }
      sources.push_back({"-", spec->path, 0, false});
    } else {
      std::error_code ec;
      auto status = fs::status(local, ec);
      if (ec || !fs::exists(status)) {
        return Fail(absl::NotFoundError(absl::StrCat("local path ", local, " does not exist")));
      }
      if (fs::is_directory(status)) {
        if (!recursive) return UsageError(local + " is a directory; use -r to upload it");
        std::string base = spec->has_path ? spec->path : "/";
        std::string root = fs::path(local).lexically_normal().string();
        while (root.size() > 1 && root.back() == '/') root.pop_back();
        for (auto it = fs::recursive_directory_iterator(root, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
          if (!it->is_regular_file(ec)) continue;
          // The iterator's paths all start with root + "/": strip it (cheaper
          // than fs::relative, which resolves every component).
          std::string full = it->path().string();
          std::string rel = full.substr(root.size() + 1);
          sources.push_back({std::move(full), pfs::JoinPath(base, rel), it->file_size(ec), false});
        }
        if (ec)
          return Fail(absl::InternalError(absl::StrCat("walking ", local, ": ", ec.message())));
        std::sort(sources.begin(), sources.end(),
                  [](const Source& a, const Source& b) { return a.dest < b.dest; });
      } else {
        std::string dest = spec->path;
        if (!spec->has_path || dest == "/" || dest_is_dir) {
          dest =
              pfs::JoinPath(spec->has_path ? spec->path : "/", fs::path(local).filename().string());
        }
        sources.push_back({local, dest, fs::file_size(local, ec), false});
      }
    }

    // Several streams need an open commit to share; an open commit from
    // before is resumed: what it already holds is not sent again.
    auto target =
        ResolveTarget(*spec, parallel > 1 && sources.size() > 1, UploadName(*spec, local));
    if (!target.ok()) return Fail(target.status());
    uint64_t skipped_files = 0, skipped_bytes = 0;
    if (target->existing && !append) {
      absl::Status st =
          SkipStaged(spec->repo, target->commit_id, &sources, &skipped_files, &skipped_bytes);
      if (!st.ok()) return Fail(st);
      if (skipped_files > 0 && !json_) {
        std::cerr << "resuming " << spec->repo << "@" << target->commit_id << ": " << skipped_files
                  << " files (" << HumanBytes(skipped_bytes) << ") are already there\n";
      }
    }

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

    PutFileResponse resp;
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
    resp.set_skipped_files(skipped_files);
    resp.set_skipped_bytes(skipped_bytes);
    return PrintPut(resp);
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
    return Call(&API::Stub::DeleteFile, req, [&](const DeleteFileResponse& resp) {
      std::cout << "deleted " << spec->path << " in " << resp.commit().repo() << "@"
                << resp.commit().id() << "\n";
    });
  }

  int Fsck() {
    if (!NeedPositional(0, "")) return kExitUsage;
    auto ctx = Ctx();
    auto reader = stub_->Fsck(ctx.get(), FsckRequest());
    FsckResponse r;
    FsckResponse summary;
    uint64_t problems = 0;
    while (reader->Read(&r)) {
      if (json_) PrintJson(r);
      if (!r.problem().empty()) {
        problems++;
        if (!json_) std::cout << "problem: " << r.problem() << "\n";
      } else {
        summary = r;
      }
    }
    grpc::Status s = reader->Finish();
    if (!s.ok()) return Fail(s);
    if (!json_) {
      std::cout << "checked " << summary.commits() << " commits, " << summary.nodes()
                << " tree nodes, " << summary.chunks() << " chunks (" << HumanBytes(summary.bytes())
                << "): " << (problems == 0 ? "no problems" : absl::StrCat(problems, " problems"))
                << "\n";
    }
    return problems == 0 ? kExitOk : kExitCorrupt;
  }

 public:
  // --- sources ------------------------------------------------------------

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
    return CallOn(
        sources_.get(), &iv1::Sources::Stub::CreateSource, req, [&](const iv1::SourceInfo& s) {
          std::cout << (req.update() ? "updated" : "created") << " source " << s.spec().name()
                    << ": " << absl::StrJoin(s.spec().kafka().topics(), ",") << " -> "
                    << s.spec().repo() << "@" << s.spec().branch()
                    << "\nrun it with: tusk-ingest --source " << s.spec().name() << "\n";
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
    return CallOn(
        sources_.get(), &iv1::Sources::Stub::InspectSource, req, [&](const iv1::SourceInfo& s) {
          const auto& spec = s.spec();
          std::cout << "Name: " << spec.name() << "\nKafka: " << spec.kafka().brokers()
                    << "\nTopics: " << absl::StrJoin(spec.kafka().topics(), ", ")
                    << "\nTarget: " << spec.repo() << "@" << spec.branch()
                    << "\nCommit policy: " << spec.max_records() << " records, "
                    << HumanBytes(spec.max_bytes()) << ", " << spec.max_latency_ms()
                    << " ms (first reached)"
                    << "\nStart: " << iv1::StartPosition_Name(spec.kafka().start())
                    << "\nLayout: " << iv1::Layout_Name(spec.layout())
                    << "\nCreated: " << Time(s.created())
                    << "\nLast commit: " << Short(s.last_commit()) << " ("
                    << Time(s.last_commit_time())
                    << ")\nRate: " << absl::StrFormat("%.0f", s.records_per_s())
                    << " records/s\n\n";
          Table parts({"TOPIC", "PARTITION", "COMMITTED", "HIGH WATERMARK", "LAG", "LOST",
                       "LAST GAP", "MEMBER"});
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
                           absl::StrFormat("%.0f", m.records_per_s()),
                           absl::StrCat(m.dead_letters()), Time(m.last_seen())});
            }
            members.Print();
          }
        });
  }

  int DeleteSource() {
    if (!NeedPositional(1, "source name")) return kExitUsage;
    iv1::DeleteSourceRequest req;
    req.set_name(args_.positional[0]);
    return CallOn(sources_.get(), &iv1::Sources::Stub::DeleteSource, req,
                  [&](const iv1::DeleteSourceResponse&) {
                    std::cout << "deleted source " << req.name() << "\n";
                  });
  }

  // --- pipelines ----------------------------------------------------------

  // Every pipeline in the spec file (-f; YAML may hold several documents).
  absl::StatusOr<std::vector<ppsv1::PipelineSpec>> PipelineSpecs() {
    std::string path = args_.Get("-f");
    ASSIGN_OR_RETURN(std::string text, ReadSpecText(path));
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
      req.set_update(update);
      req.set_reprocess(args_.Has("--reprocess"));
      int rc = CallOn(
          pps_.get(), &ppsv1::Pps::Stub::CreatePipeline, req, [&](const ppsv1::PipelineInfo& p) {
            std::cout << (update ? "updated" : "created") << " pipeline "
                      << p.spec().pipeline().name() << " (version " << p.version() << ")\n";
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
    Table t({"NAME", "VERSION", "STATE", "INPUT", "CREATED", "DESCRIPTION"});
    for (const auto& p : resp.pipelines()) {
      t.Add({p.spec().pipeline().name(), absl::StrCat(p.version()),
             ppsv1::PipelineState_Name(p.state()), InputSummary(p.spec().input()),
             Time(p.created()), p.spec().description()});
    }
    t.Print();
    return kExitOk;
  }

  int InspectPipeline() {
    if (!NeedPositional(1, "pipeline name")) return kExitUsage;
    ppsv1::InspectPipelineRequest req;
    req.set_name(args_.positional[0]);
    return CallOn(
        pps_.get(), &ppsv1::Pps::Stub::InspectPipeline, req, [&](const ppsv1::PipelineInfo& p) {
          const auto& spec = p.spec();
          std::cout << "Name: " << spec.pipeline().name() << "\nDescription: " << spec.description()
                    << "\nVersion: " << p.version()
                    << "\nState: " << ppsv1::PipelineState_Name(p.state())
                    << "\nCommand: " << absl::StrJoin(spec.transform().cmd(), " ") << "\nImage: "
                    << (spec.transform().image().empty() ? "-" : spec.transform().image())
                    << "\nInput: " << InputSummary(spec.input())
                    << "\nOutput: " << spec.pipeline().name() << "@" << spec.output_branch()
                    << "\nParallelism: " << spec.parallelism_spec().constant()
                    << "\nDatum tries: " << spec.datum_tries() << "\nCreated: " << Time(p.created())
                    << "\nUpdated: " << Time(p.updated()) << "\n";
        });
  }

  int DeletePipeline() {
    if (!NeedPositional(1, "pipeline name")) return kExitUsage;
    ppsv1::DeletePipelineRequest req;
    req.set_name(args_.positional[0]);
    req.set_keep_repo(args_.Has("--keep-repo"));
    return CallOn(pps_.get(), &ppsv1::Pps::Stub::DeletePipeline, req,
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
    return CallOn(pps_.get(), method, req, [&](const ppsv1::PipelineInfo& p) {
      std::cout << verb << " pipeline " << p.spec().pipeline().name() << "\n";
    });
  }
  // --- jobs and datums ----------------------------------------------------

  // PIPELINE@JOB from positional `i`.
  bool PipelineJob(size_t i, std::string* pipeline, std::string* job) {
    if (args_.positional.size() <= i) return false;
    const std::string& a = args_.positional[i];
    size_t at = a.find('@');
    if (at == std::string::npos || at == 0 || at + 1 == a.size()) return false;
    *pipeline = a.substr(0, at);
    *job = a.substr(at + 1);
    return true;
  }

  static std::string Duration(const google::protobuf::Timestamp& from,
                              const google::protobuf::Timestamp& to) {
    if (from.seconds() == 0) return "-";
    int64_t end = to.seconds() == 0 ? absl::ToUnixNanos(absl::Now())
                                    : to.seconds() * 1000000000LL + to.nanos();
    double secs = (end - (from.seconds() * 1000000000LL + from.nanos())) / 1e9;
    if (secs < 10) return absl::StrFormat("%.3fs", secs);
    return absl::FormatDuration(absl::Seconds(static_cast<int64_t>(secs)));
  }

  static std::string StatsLine(const ppsv1::ProcessStats& s) {
    auto secs = [](const google::protobuf::Duration& d) {
      return absl::StrFormat("%.3fs", d.seconds() + d.nanos() / 1e9);
    };
    return absl::StrCat("download ", secs(s.download_time()), " (", HumanBytes(s.download_bytes()),
                        "), process ", secs(s.process_time()), ", upload ", secs(s.upload_time()),
                        " (", HumanBytes(s.upload_bytes()), ")");
  }

  static std::string JobStateName(ppsv1::JobState s) {
    std::string n = ppsv1::JobState_Name(s);
    return absl::StartsWith(n, "JOB_") ? n.substr(4) : n;
  }

  static std::string DatumCounts(const ppsv1::JobInfo& j) {
    return absl::StrCat(j.datums_processed(), " + ", j.datums_skipped(), " skipped / ",
                        j.datums_total(),
                        j.datums_failed() ? absl::StrCat(", ", j.datums_failed(), " failed") : "");
  }

  int ListJob() {
    ppsv1::ListJobRequest req;
    req.set_pipeline(args_.Get("-p"));
    if (args_.Has("-n")) {
      uint64_t n = 0;
      if (!absl::SimpleAtoi(args_.Get("-n"), &n)) return UsageError("-n needs a number");
      req.set_limit(n);
    }
    Table t({"PIPELINE", "ID", "STATE", "STARTED", "DURATION", "DATUMS", "INPUTS"});
    grpc::ClientContext ctx;
    auto reader = pps_->ListJob(&ctx, req);
    ppsv1::JobInfo j;
    while (reader->Read(&j)) {
      if (json_) {
        PrintJson(j);
        continue;
      }
      std::vector<std::string> inputs;
      for (const auto& in : j.inputs())
        inputs.push_back(in.repo() + "@" + (in.id().empty() ? "-" : in.id().substr(0, 12)));
      t.Add({j.pipeline(), j.id(), JobStateName(j.state()), Time(j.created()),
             Duration(j.started(), j.finished()), DatumCounts(j), absl::StrJoin(inputs, ",")});
    }
    grpc::Status s = reader->Finish();
    if (!s.ok()) return Fail(s);
    if (!json_) t.Print();
    return kExitOk;
  }

  void PrintJob(const ppsv1::JobInfo& j) {
    if (json_) return PrintJson(j);
    std::cout << "Job: " << j.pipeline() << "@" << j.id() << "\n"
              << "State: " << JobStateName(j.state())
              << (j.reason().empty() ? "" : " (" + j.reason() + ")") << "\n"
              << "Pipeline version: " << j.pipeline_version() << "\n"
              << "Created: " << Time(j.created()) << "\n"
              << "Started: " << Time(j.started()) << "\n"
              << "Finished: " << Time(j.finished()) << "\n"
              << "Duration: " << Duration(j.started(), j.finished()) << "\n"
              << "Datums: " << j.datums_total() << " total, " << j.datums_processed()
              << " processed, " << j.datums_skipped() << " skipped, " << j.datums_failed()
              << " failed, " << j.datums_removed() << " removed\n"
              << "Time in datums: " << StatsLine(j.stats()) << "\n"
              << "Trigger: " << j.trigger().repo() << "@" << j.trigger().id() << "\n";
    for (const auto& in : j.inputs()) {
      std::cout << "Input: " << in.repo() << "@" << (in.id().empty() ? "(no commit)" : in.id())
                << " (" << in.branch() << ")\n";
    }
    std::cout << "Output commit: " << j.output_commit().repo() << "@" << j.output_commit().id()
              << "\n"
              << "Commit set: " << j.commit_set() << "\n";
  }

  int InspectJob() {
    ppsv1::InspectJobRequest req;
    if (!PipelineJob(0, req.mutable_pipeline(), req.mutable_job())) {
      return UsageError("inspect job needs PIPELINE@JOB");
    }
    grpc::ClientContext ctx;
    auto reader = pps_->InspectJob(&ctx, req);
    ppsv1::JobInfo j;
    while (reader->Read(&j)) PrintJob(j);
    grpc::Status s = reader->Finish();
    return s.ok() ? kExitOk : Fail(s);
  }

  int WaitJob() {
    ppsv1::InspectJobRequest req;
    if (!PipelineJob(0, req.mutable_pipeline(), req.mutable_job())) {
      return UsageError("wait job needs PIPELINE@JOB");
    }
    req.set_wait(true);
    bool tty = ::isatty(STDERR_FILENO) == 1 && !json_;
    grpc::ClientContext ctx;
    auto reader = pps_->InspectJob(&ctx, req);
    ppsv1::JobInfo j;
    bool any = false;
    while (reader->Read(&j)) {
      any = true;
      if (tty && j.datums_total() > 0) {
        uint64_t done = j.datums_processed() + j.datums_skipped() + j.datums_failed();
        int width = 30;
        int filled = static_cast<int>(width * done / j.datums_total());
        std::cerr << "\r[" << std::string(filled, '=') << std::string(width - filled, ' ') << "] "
                  << done << "/" << j.datums_total() << " (" << j.datums_processed()
                  << " processed, " << j.datums_skipped() << " skipped, " << j.datums_failed()
                  << " failed)" << std::flush;
      }
    }
    if (tty && any) std::cerr << "\n";
    grpc::Status s = reader->Finish();
    if (!s.ok()) return Fail(s);
    if (json_) {
      PrintJson(j);
    } else {
      std::cout << "job " << j.pipeline() << "@" << j.id() << " "
                << absl::AsciiStrToLower(JobStateName(j.state()))
                << (j.reason().empty() ? "" : ": " + j.reason()) << " (" << DatumCounts(j) << ", "
                << Duration(j.started(), j.finished()) << ")\n";
    }
    return j.state() == ppsv1::JOB_SUCCESS ? kExitOk : 1;
  }

  static std::string DatumStateName(ppsv1::DatumState s) {
    std::string n = ppsv1::DatumState_Name(s);
    return absl::StartsWith(n, "DATUM_") ? n.substr(6) : n;
  }

  int ListDatum() {
    ppsv1::ListDatumRequest req;
    if (!PipelineJob(0, req.mutable_pipeline(), req.mutable_job())) {
      return UsageError("list datum needs PIPELINE@JOB");
    }
    Table t({"ID", "STATE", "ATTEMPTS", "INPUTS", "ERROR"});
    grpc::ClientContext ctx;
    auto reader = pps_->ListDatum(&ctx, req);
    ppsv1::DatumInfo d;
    while (reader->Read(&d)) {
      if (json_) {
        PrintJson(d);
        continue;
      }
      std::vector<std::string> inputs;
      for (const auto& in : d.inputs()) inputs.push_back(in.name() + ":" + in.path());
      t.Add({d.id().substr(0, 16), DatumStateName(d.state()), absl::StrCat(d.attempts()),
             absl::StrJoin(inputs, " "), d.error()});
    }
    grpc::Status s = reader->Finish();
    if (!s.ok()) return Fail(s);
    if (!json_) t.Print();
    return kExitOk;
  }

  int InspectDatum() {
    ppsv1::InspectDatumRequest req;
    if (!PipelineJob(0, req.mutable_pipeline(), req.mutable_job()) ||
        args_.positional.size() != 2) {
      return UsageError("inspect datum needs PIPELINE@JOB DATUM");
    }
    req.set_datum(args_.positional[1]);
    return CallOn(pps_.get(), &ppsv1::Pps::Stub::InspectDatum, req, [&](const ppsv1::DatumInfo& d) {
      std::cout << "Datum: " << d.id() << "\nJob: " << d.pipeline() << "@" << d.job()
                << "\nState: " << DatumStateName(d.state()) << "\nAttempts: " << d.attempts()
                << "\n";
      if (!d.error().empty()) std::cout << "Error: " << d.error() << "\n";
      for (const auto& in : d.inputs()) {
        std::cout << "Input: " << in.name() << " " << in.repo() << "@" << in.commit() << ":"
                  << in.path() << (in.dir() ? " (dir)" : "") << "\n";
      }
      std::cout << "Output: " << d.output_files() << " files, " << HumanBytes(d.output_bytes())
                << "\n"
                << "Started: " << Time(d.started()) << "\nFinished: " << Time(d.finished()) << "\n";
      if (d.has_stats()) std::cout << "Time: " << StatsLine(d.stats()) << "\n";
    });
  }

  int Logs() {
    ppsv1::GetLogsRequest req;
    req.set_pipeline(args_.Get("-p"));
    if (req.pipeline().empty()) return UsageError("logs needs -p PIPELINE");
    req.set_job(args_.Get("--job"));
    req.set_datum(args_.Get("--datum"));
    req.set_follow(args_.Has("--follow"));
    grpc::ClientContext ctx;
    auto reader = pps_->GetLogs(&ctx, req);
    ppsv1::LogMessage m;
    while (reader->Read(&m)) {
      if (json_) {
        PrintJson(m);
        continue;
      }
      std::cout << "--- job " << m.job().substr(0, 12) << " datum " << m.datum().substr(0, 12)
                << " attempt " << m.attempt() << " on " << m.runner() << " at " << Time(m.time())
                << (m.truncated() ? " (truncated)" : "") << "\n"
                << m.message();
      if (!m.message().empty() && m.message().back() != '\n') std::cout << "\n";
      std::cout << std::flush;
    }
    grpc::Status s = reader->Finish();
    return s.ok() ? kExitOk : Fail(s);
  }

  int WaitCommitSet() {
    if (!NeedPositional(1, "commit set id")) return kExitUsage;
    InspectCommitSetRequest req;
    req.set_commit_set(args_.positional[0]);
    req.set_wait(true);
    Table t({"REPO", "ID", "BRANCH", "STATE", "ORIGIN", "ERROR"});
    bool failed = false;
    int rc = Stream(&API::Stub::InspectCommitSet, req, [&](const CommitInfo& c) {
      failed = failed || !c.error().empty();
      if (json_) {
        PrintJson(c);
      } else {
        t.Add({c.repo(), c.id(), c.branch(), CommitState_Name(c.state()), Origin_Name(c.origin()),
               c.error()});
      }
    });
    if (rc != kExitOk) return rc;
    if (!json_) t.Print();
    return failed ? 1 : kExitOk;
  }

  int StopPipeline() {
    return SetPipelineState<ppsv1::StopPipelineRequest>(&ppsv1::Pps::Stub::StopPipeline, "stopped");
  }
  int StartPipeline() {
    return SetPipelineState<ppsv1::StartPipelineRequest>(&ppsv1::Pps::Stub::StartPipeline,
                                                         "started");
  }

  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;  // tuskd's; its state tells whether tuskd was reached

 private:
  const Args& args_;
  std::unique_ptr<API::Stub> stub_;
  std::unique_ptr<iv1::Sources::Stub> sources_;
  std::unique_ptr<ppsv1::Pps::Stub> pps_;
  bool json_ = false;
};

}  // namespace
}  // namespace tusk::cli

int main(int argc, char** argv) {
  using namespace tusk::cli;  // NOLINT
  std::vector<std::string> argv_s(argv + 1, argv + argc);
  // In 'logs', -f means follow (elsewhere it names a file).
  if (!argv_s.empty() && argv_s[0] == "logs") {
    for (auto& a : argv_s) {
      if (a == "-f") a = "--follow";
    }
  }
  FlagSpec spec;
  spec.value_flags = {"--address",
                      "-f",
                      "-o",
                      "-m",
                      "--description",
                      "--head",
                      "--to",
                      "-n",
                      "--kafka",
                      "--topic",
                      "--repo",
                      "--branch",
                      "--max-records",
                      "--max-bytes",
                      "--max-latency",
                      "--start",
                      "--layout",
                      "--max-record-bytes",
                      "--value-format",
                      "--parallel",
                      "--s3-endpoint",
                      "--s3-region",
                      "--batch",
                      "-p",
                      "--job",
                      "--datum",
                      "--keep-last",
                      "--keep-for",
                      "--grace",
                      "--rewrite-below"};
  spec.bool_flags = {"--json",      "-r",           "--append",     "--force",  "-h",
                     "--help",      "--update",     "--untar",      "--staged", "--reprocess",
                     "--keep-repo", "--provenance", "--subvenance", "--follow", "--keep-all"};
  spec.aliases = {{"--file", "-f"},
                  {"--output", "-o"},
                  {"--message", "-m"},
                  {"--recursive", "-r"},
                  {"--number", "-n"}};
  auto args = ParseArgs(argv_s, spec);
  if (!args.ok()) return Cli::UsageError(std::string(args.status().message()));
  // The command is one word (version, revert, fsck) or two (verb noun).
  static const std::set<std::string> kSingle = {"version", "revert", "fsck", "help", "logs", "gc"};
  std::string command;
  if (!args->positional.empty()) {
    command = args->positional[0];
    args->positional.erase(args->positional.begin());
    if (!kSingle.count(command) && !args->positional.empty()) {
      command += " " + args->positional[0];
      args->positional.erase(args->positional.begin());
    }
  }
  if (command.empty() || command == "help") {
    if (command.empty() && !args->Has("--help") && !args->Has("-h")) {
      std::cerr << kMainHelp;
      return kExitUsage;
    }
    std::cout << kMainHelp;
    return kExitOk;
  }
  if (args->Has("--help") || args->Has("-h")) {
    auto it = kCommandHelp.find(command);
    if (it == kCommandHelp.end()) return Cli::UsageError("unknown command '" + command + "'");
    std::cout << "Usage: " << it->second
              << "\nFlags: --address HOST:PORT, --json (see 'tusk --help')\n";
    return kExitOk;
  }
  if (!kCommandHelp.count(command)) return Cli::UsageError("unknown command '" + command + "'");
  std::string address = args->Get("--address");
  if (address.empty()) {
    const char* env = std::getenv("TUSK_ADDRESS");
    address = env && *env ? env : "127.0.0.1:1650";
  }
  auto channel = tusk::NewChannel(address);
  Cli cli(*args, tusk::pfs::v1::API::NewStub(channel), iv1::Sources::NewStub(channel),
          ppsv1::Pps::NewStub(channel));
  cli.address_ = address;
  cli.channel_ = channel;
  return cli.Run(command);
}
