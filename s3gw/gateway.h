#pragma once

// Gateway: S3's REST API over Pfs, so that any S3 client, SQL engine or
// notebook reads and writes tusk's versioned data (tuskd --s3-listen).
//
// Addressing (address.h): bucket = repo and key = REF/PATH (lakeFS style,
// any tusk ref: master~7 time-travels), or bucket BRANCH.REPO /
// COMMIT.BRANCH.REPO and key = PATH (Pachyderm style). versionId is a commit
// id; an ETag is the file's content hash, so it is the same in every commit
// that holds the same bytes. REF/.tusk/diff/FROM.jsonl is the diff from FROM
// to REF, one JSON object per changed path.
//
// Writes go to a branch: each PUT, DELETE or copy is one automatic commit,
// unless the branch has an open commit (tusk start commit), which they join.
// A body streams into the store with no commit open (Pfs's bind_at_close
// uploads), so many uploads run at once and each holds the branch only for
// the moment it commits.
//
// Authentication: SigV4 (header or presigned URL). With an Authority, the
// access key id names a tusk token and the secret is checked through it;
// without one (authentication off) any credentials, or none, are accepted.
//
// Thread-safe: Begin is called concurrently by the HTTP server's threads.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "pfs/pfs.h"
#include "s3gw/server.h"

namespace tusk::s3gw {

// Who may do what (tuskd's tokens). Thread-safe.
class Authority {
 public:
  virtual ~Authority() = default;
  // The secret access key of `access_key`: PermissionDenied (with S3's code
  // InvalidAccessKeyId) if it names no valid token.
  virtual absl::StatusOr<std::string> Secret(const std::string& access_key) = 0;
  // Whether that key may read (or write) `repo`.
  virtual bool Allowed(const std::string& access_key, bool write, const std::string& repo) = 0;
};

struct GatewayOptions {
  // Virtual-host style requests (BUCKET.DOMAIN) when set; path style always.
  std::string domain;
  std::string region = "us-east-1";
  // Null: authentication is off.
  Authority* authority = nullptr;
  // The most keys a listing or a diff object holds in memory while it
  // merges (ListObjectVersions over a long history).
  size_t max_versions_scan = 1000000;
};

class Gateway final : public HttpHandler {
 public:
  // `pfs` must outlive the gateway.
  Gateway(pfs::Pfs* pfs, GatewayOptions options);
  ~Gateway() override;
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  Begun Begin(const HttpRequest& request) override;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tusk::s3gw
