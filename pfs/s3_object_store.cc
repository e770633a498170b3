// The S3 object store: ObjectStore over http::S3Client.
//
// S3Client is single-threaded (one connection, kept alive), so the store
// keeps a pool of clients: a call takes an idle client (or makes one) and
// gives it back, which reuses connections across calls. A large Put is a
// multipart upload whose parts go up on a bounded pool of threads.

#include <atomic>
#include <future>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/status.h"
#include "common/thread_pool.h"
#include "http/s3.h"
#include "pfs/object_store.h"

namespace tusk::pfs {
namespace {

// S3's smallest part (but the last).
constexpr size_t kMinPartSize = 5 << 20;

class S3ObjectStore : public ObjectStore {
 public:
  S3ObjectStore(const S3StoreOptions& options, const http::S3Options& s3)
      : options_(options), clients_(s3), parts_(std::max(1, options.parallelism)) {}

  ~S3ObjectStore() override = default;

  absl::Status Put(const std::string& key, absl::string_view data) override {
    RETURN_IF_ERROR(ValidateObjectKey(key));
    if (data.size() > options_.part_size) return PutMultipart(key, data);
    absl::Status s = Call(
        &stats_.puts, [&](http::S3Client* c) { return c->Put(options_.bucket, Full(key), data); });
    if (s.ok()) stats_.bytes_written += data.size();
    return s;
  }

  absl::StatusOr<std::string> GetRange(const std::string& key, uint64_t offset,
                                       uint64_t length) override {
    RETURN_IF_ERROR(ValidateObjectKey(key));
    auto out = Call(&stats_.gets, [&](http::S3Client* c) {
      return c->GetRange(options_.bucket, Full(key), offset, length);
    });
    if (out.ok()) stats_.bytes_read += out->size();
    return out;
  }

  absl::StatusOr<uint64_t> Size(const std::string& key) override {
    RETURN_IF_ERROR(ValidateObjectKey(key));
    ASSIGN_OR_RETURN(http::ObjectInfo info, Call(&stats_.heads, [&](http::S3Client* c) {
                       return c->Head(options_.bucket, Full(key));
                     }));
    return info.size;
  }

  absl::Status Delete(const std::string& key) override {
    RETURN_IF_ERROR(ValidateObjectKey(key));
    return Call(&stats_.deletes,
                [&](http::S3Client* c) { return c->Delete(options_.bucket, Full(key)); });
  }

  absl::Status List(const std::string& prefix,
                    const std::function<void(const std::string& key, uint64_t size)>& fn) override {
    stats_.lists++;  // one per call: its pages are not retries
    return Call(nullptr, [&](http::S3Client* c) {
      return c->List(options_.bucket, Full(prefix), [&](const http::ObjectInfo& info) {
        if (!absl::StartsWith(info.key, options_.prefix)) return absl::OkStatus();
        fn(info.key.substr(options_.prefix.size()), info.size);
        return absl::OkStatus();
      });
    });
  }

  std::string Describe() const override {
    return absl::StrCat("s3://", options_.bucket, "/", options_.prefix,
                        options_.endpoint.empty() ? "" : absl::StrCat(" at ", options_.endpoint));
  }

  ObjectStoreStats Stats() const override {
    ObjectStoreStats s;
    s.set_puts(stats_.puts);
    s.set_gets(stats_.gets);
    s.set_heads(stats_.heads);
    s.set_lists(stats_.lists);
    s.set_deletes(stats_.deletes);
    s.set_retries(stats_.retries);
    s.set_bytes_written(stats_.bytes_written);
    s.set_bytes_read(stats_.bytes_read);
    return s;
  }

  absl::Status CheckBucket() {
    return Call(nullptr, [&](http::S3Client* c) { return c->CheckBucket(options_.bucket); });
  }

 private:
  std::string Full(const std::string& key) const { return options_.prefix + key; }

  // Runs fn (returning a Status or StatusOr) with an idle client, made on
  // demand and returned to the pool after, which reuses its connection. The
  // call counts once under `counter` (if any) and its further requests as
  // retries.
  template <typename F>
  auto Call(std::atomic<uint64_t>* counter, F fn) -> decltype(fn(nullptr)) {
    auto client = clients_.Take();
    if (!client.ok()) return client.status();
    uint64_t before = (*client)->requests();
    auto result = fn(client->get());
    uint64_t sent = (*client)->requests() - before;
    if (counter != nullptr && sent > 0) {
      *counter += 1;
      stats_.retries += sent - 1;
    }
    clients_.Give(std::move(*client));
    return result;
  }

  absl::Status PutMultipart(const std::string& key, absl::string_view data) {
    std::string full = Full(key);
    size_t part = std::max(options_.part_size, kMinPartSize);
    ASSIGN_OR_RETURN(std::string upload_id, Call(&stats_.puts, [&](http::S3Client* c) {
                       return c->CreateMultipartUpload(options_.bucket, full);
                     }));
    size_t n = (data.size() + part - 1) / part;
    std::vector<std::future<absl::StatusOr<std::string>>> etags;
    etags.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      absl::string_view piece = data.substr(i * part, part);
      etags.push_back(parts_.Submit([this, &full, &upload_id, i, piece] {
        return Call(&stats_.puts, [&](http::S3Client* c) {
          return c->UploadPart(options_.bucket, full, upload_id, static_cast<int>(i + 1), piece);
        });
      }));
    }
    // Wait for every part (they reference `data`) before deciding.
    std::vector<std::string> tags;
    absl::Status failure;
    for (auto& f : etags) {
      auto etag = f.get();
      if (etag.ok()) {
        tags.push_back(*etag);
      } else if (failure.ok()) {
        failure = etag.status();
      }
    }
    if (failure.ok()) {
      failure = Call(&stats_.puts, [&](http::S3Client* c) {
        return c->CompleteMultipartUpload(options_.bucket, full, upload_id, tags);
      });
      if (failure.ok()) {
        stats_.bytes_written += data.size();
        return absl::OkStatus();
      }
    }
    // Drop the parts already stored; the object never appeared.
    absl::Status aborted = Call(&stats_.deletes, [&](http::S3Client* c) {
      return c->AbortMultipartUpload(options_.bucket, full, upload_id);
    });
    if (!aborted.ok()) {
      LOG(WARNING) << "could not abort the multipart upload of " << Describe() << full << ": "
                   << aborted;
    }
    return failure;
  }

  const S3StoreOptions options_;
  http::S3ClientPool clients_;
  struct {
    std::atomic<uint64_t> puts{0}, gets{0}, heads{0}, lists{0}, deletes{0}, retries{0},
        bytes_written{0}, bytes_read{0};
  } stats_;
  ThreadPool parts_;  // last: its threads finish before the rest goes
};

}  // namespace

absl::Status ParseS3StoreUrl(const std::string& url, S3StoreOptions* options) {
  ASSIGN_OR_RETURN(http::S3Url parsed, http::ParseS3Url(url));
  options->bucket = parsed.bucket;
  options->prefix = parsed.key;
  while (!options->prefix.empty() && options->prefix.back() == '/') options->prefix.pop_back();
  if (!options->prefix.empty()) {
    RETURN_IF_ERROR(
        Annotate(ValidateObjectKey(options->prefix), absl::StrCat("the prefix of ", url)));
    options->prefix += '/';
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ObjectStore>> OpenS3ObjectStore(const S3StoreOptions& options) {
  if (options.bucket.empty()) return absl::InvalidArgumentError("S3 object store without a bucket");
  if (options.part_size < kMinPartSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("S3 part size ", options.part_size, " is below S3's minimum of 5 MiB"));
  }
  http::S3Options s3;
  s3.endpoint = options.endpoint;
  s3.region = options.region;
  s3.virtual_host = options.virtual_host;
  if (!options.access_key.empty()) {
    s3.credentials = {options.access_key, options.secret_key, options.session_token};
  } else {
    ASSIGN_OR_RETURN(s3.credentials, http::CredentialsFromEnvironment());
  }
  s3.max_retries = options.max_retries;
  s3.base_backoff = options.base_backoff;
  s3.max_backoff = options.max_backoff;
  s3.http.connect_timeout = options.connect_timeout;
  s3.http.stall_timeout = options.stall_timeout;
  s3.http.user_agent = "tusk-object-store";
  auto store = std::make_unique<S3ObjectStore>(options, s3);
  RETURN_IF_ERROR(store->CheckBucket());
  return std::unique_ptr<ObjectStore>(std::move(store));
}

}  // namespace tusk::pfs
