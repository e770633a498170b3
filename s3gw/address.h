#pragma once

// Where an S3 request points in tusk (the S3 gateway's addressing).
//
// The bucket comes from the Host header (virtual-host style, BUCKET.DOMAIN
// when the gateway has a domain) or from the path's first component (path
// style). Two ways of naming data, told apart by a '.' in the bucket (repo
// names have none):
//   lakeFS style      bucket REPO, key REF/PATH, where REF is any tusk ref:
//                     a branch, a commit id, with ^ and ~N (master~7).
//   Pachyderm style   bucket BRANCH.REPO or COMMIT.BRANCH.REPO, key PATH.
// Writes go to a branch; a commit id or a ref with ^ or ~N is read-only.
//
// Errors are InvalidArgument with S3's code as the payload
// http::kS3ErrorCodePayload (InvalidBucketName, InvalidArgument). Pure and
// thread-safe.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tusk::s3gw {

// The bucket and key of a request (the key decoded; empty for requests on a
// bucket, and both empty for the service: ListBuckets).
struct S3Target {
  std::string bucket;
  std::string key;
  bool virtual_host = false;
};

// `host`: the Host header (with or without a port); `decoded_path`: the
// request path with its %-escapes decoded; `domain`: the gateway's
// --s3-domain ("" if none: path style only).
absl::StatusOr<S3Target> ParseTarget(absl::string_view host, absl::string_view decoded_path,
                                     absl::string_view domain);

struct RepoAddress {
  std::string repo;
  // The ref (lakeFS: the key's first component; Pachyderm: the commit or
  // the branch). Empty in lakeFS style when the key has no ref yet (a
  // listing of the bucket's root, which lists refs).
  std::string ref;
  // Below the commit's root, without a leading '/': a file, or a prefix
  // ("" or ending in '/') for listings.
  std::string path;
  bool read_only = false;  // the ref is a commit id or has ^ / ~N
  bool pachyderm_style = false;
};

// Resolves a bucket and (decoded) key. InvalidBucketName for a bucket that
// names no valid repo (or branch and repo); InvalidArgument for a ref or a
// path tusk does not accept (".." or "." components, NUL, bad UTF-8).
absl::StatusOr<RepoAddress> ResolveBucketKey(const std::string& bucket, const std::string& key);

}  // namespace tusk::s3gw
