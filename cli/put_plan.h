#pragma once

// put file, first half: what to send. Each -f names a local file or
// directory (-r), stdin, a URL or an S3 prefix; together they make a list of
// sources with their destination paths. The second half (put_file.cc) sends
// them over one or more streams into one commit.

#include <archive.h>
#include <archive_entry.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/args.h"
#include "http/s3.h"
#include "pfs/refs.h"

namespace tusk::cli {

// One thing to upload: a local file, stdin ("-"), or a URL.
struct Source {
  std::string src;
  std::string dest;
  uint64_t size = 0;  // 0 when unknown (stdin, a single URL)
  bool url = false;
};

// S3 settings from --s3-endpoint and --s3-region, else the environment.
http::S3Options S3OptionsFromArgs(const Args& args);
// The sources of `-f URL`: one object or page, or (s3:// with -r or a
// trailing '/') every object beneath a prefix.
absl::StatusOr<std::vector<Source>> UrlSources(const Args& args, const pfs::FileSpec& spec,
                                               const std::string& url, bool dest_is_dir,
                                               const http::S3Options& s3);
// What names an upload in its commit's metadata: the sources (absolute local
// paths) and the destination.
std::string UploadName(const pfs::FileSpec& spec, const std::vector<std::string>& locals);
// The files of a local directory (-r), beneath `base`.
absl::Status DirectorySources(const std::string& local, const std::string& base,
                              std::vector<Source>* sources);
// What one -f names, added to `sources`; with several -f the destination is a
// directory. InvalidArgument for a directory without -r.
absl::Status PlanSources(const Args& args, const pfs::FileSpec& spec, const std::string& local,
                         bool dest_is_dir, http::S3Options* s3, std::vector<Source>* sources);
// The usage error of put file's flags, or "".
std::string CheckPutFlags(const Args& args, const pfs::FileSpec& spec,
                          const std::vector<std::string>& locals, int* parallel);

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

}  // namespace tusk::cli
