#include "cli/put_plan.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "http/s3.h"
#include "http/url_reader.h"

namespace tusk::cli {

namespace fs = std::filesystem;

http::S3Options S3OptionsFromArgs(const Args& args) {
  http::S3Options o;
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  o.endpoint = args.Get("--s3-endpoint", env("AWS_ENDPOINT_URL_S3"));
  if (o.endpoint.empty()) o.endpoint = env("AWS_ENDPOINT_URL");
  o.region = args.Get("--s3-region", env("AWS_REGION"));
  if (o.region.empty()) o.region = env("AWS_DEFAULT_REGION");
  if (o.region.empty()) o.region = "us-east-1";
  return o;
}

// The sources of `-f URL`: one object or page, or (s3:// with -r or a
// trailing '/') every object beneath a prefix.
absl::StatusOr<std::vector<Source>> UrlSources(const Args& args, const pfs::FileSpec& spec,
                                               const std::string& url, bool dest_is_dir,
                                               const http::S3Options& s3) {
  std::string base = spec.has_path ? spec.path : "/";
  std::vector<Source> out;
  if (absl::StartsWith(url, "s3://")) {
    ASSIGN_OR_RETURN(http::S3Url loc, http::ParseS3Url(url));
    if (args.Has("-r") || loc.key.empty() || loc.key.back() == '/') {
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
    std::string name = path.find('/') == std::string::npos ? "" : path.substr(path.rfind('/') + 1);
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(url, " has no file name: give a destination, REPO@REF:/PATH"));
    }
    dest = pfs::JoinPath(spec.has_path ? spec.path : "/", name);
  }
  out.push_back({url, dest, 0, true});
  return out;
}

// What names an upload in its commit's metadata (kPutMetadataKey): the
// sources (absolute local paths) and the destination.
std::string UploadName(const pfs::FileSpec& spec, const std::vector<std::string>& locals) {
  std::vector<std::string> srcs;
  for (const auto& local : locals) {
    std::string src = local;
    if (local != "-" && !http::UrlReader::IsUrl(local)) {
      std::error_code ec;
      fs::path abs = fs::absolute(local, ec);
      if (!ec) src = abs.lexically_normal().string();
    }
    srcs.push_back(src);
  }
  return absl::StrCat("put file ", absl::StrJoin(srcs, " "), " -> ", spec.repo, "@", spec.ref, ":",
                      spec.has_path ? spec.path : "/");
}

// The files of a local directory (-r), beneath `base`, in path order.
absl::Status DirectorySources(const std::string& local, const std::string& base,
                              std::vector<Source>* sources) {
  std::error_code ec;
  std::string root = fs::path(local).lexically_normal().string();
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    // The iterator's paths all start with root + "/": strip it (cheaper
    // than fs::relative, which resolves every component).
    std::string full = it->path().string();
    std::string rel = full.substr(root.size() + 1);
    sources->push_back({std::move(full), pfs::JoinPath(base, rel), it->file_size(ec), false});
  }
  if (ec) return absl::InternalError(absl::StrCat("walking ", local, ": ", ec.message()));
  return absl::OkStatus();
}

// What one -f names: a local file or directory, stdin, or a URL. With
// several -f, the destination is a directory.
absl::Status PlanSources(const Args& args, const pfs::FileSpec& spec, const std::string& local,
                         bool dest_is_dir, http::S3Options* s3, std::vector<Source>* sources) {
  bool recursive = args.Has("-r");
  if (http::UrlReader::IsUrl(local)) {
    if (s3->credentials.access_key.empty()) {
      ASSIGN_OR_RETURN(s3->credentials, http::CredentialsFromEnvironment());
    }
    ASSIGN_OR_RETURN(auto found, UrlSources(args, spec, local, dest_is_dir, *s3));
    sources->insert(sources->end(), found.begin(), found.end());
    return absl::OkStatus();
  }
  if (local == "-") {
    sources->push_back({"-", spec.path, 0, false});
    return absl::OkStatus();
  }
  std::error_code ec;
  auto status = fs::status(local, ec);
  if (ec || !fs::exists(status)) {
    return absl::NotFoundError(absl::StrCat("local path ", local, " does not exist"));
  }
  std::string base = spec.has_path ? spec.path : "/";
  if (fs::is_directory(status)) {
    if (!recursive) {
      return absl::InvalidArgumentError(local + " is a directory; use -r to upload it");
    }
    return DirectorySources(local, base, sources);
  }
  std::string dest = spec.path;
  if (!spec.has_path || dest == "/" || dest_is_dir) {
    dest = pfs::JoinPath(base, fs::path(local).filename().string());
  }
  sources->push_back({local, dest, fs::file_size(local, ec), false});
  return absl::OkStatus();
}

// Usage errors of put file's flags; "" if none.
std::string CheckPutFlags(const Args& args, const pfs::FileSpec& spec,
                          const std::vector<std::string>& locals, int* parallel) {
  bool recursive = args.Has("-r"), untar = args.Has("--untar"), append = args.Has("--append");
  // One stream by default: a single stream's writes land all at once or not
  // at all. Several streams share an open commit that an interruption leaves
  // open with the files that arrived.
  if (args.Has("--parallel") &&
      (!absl::SimpleAtoi(args.Get("--parallel"), parallel) || *parallel < 1 || *parallel > 64)) {
    return "--parallel needs a number of streams from 1 to 64";
  }
  if (untar && recursive) return "--untar and -r do not go together";
  if (untar && append) return "--untar and --append do not go together";
  if ((untar || append) && locals.size() > 1) {
    return absl::StrCat(untar ? "--untar" : "--append", " takes one -f");
  }
  for (const auto& local : locals) {
    bool is_url = http::UrlReader::IsUrl(local);
    if (untar && is_url) return "--untar reads a local file or stdin; pipe a download into -f -";
    if (recursive && is_url && !absl::StartsWith(local, "s3://")) {
      return "-r with a URL needs an s3:// prefix";
    }
    if (local == "-" && locals.size() > 1) return "-f - (stdin) goes alone";
    if (local == "-" && !untar && (!spec.has_path || spec.path == "/")) {
      return "put file from stdin needs a destination path: REPO@REF:/PATH";
    }
  }
  return "";
}

}  // namespace tusk::cli
