#include "server/s3_egress.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/status.h"
#include "common/thread_pool.h"

namespace tusk::server {
namespace {

// S3's smallest part (but the last).
constexpr size_t kMinPartSize = 5 << 20;

class S3EgressWriter : public dispatcher::EgressWriter {
 public:
  S3EgressWriter(const S3EgressOptions& options, http::S3Url where)
      : options_(options),
        clients_(options.s3),
        where_(std::move(where)),
        part_size_(std::max(options.part_size, kMinPartSize)),
        max_inflight_(2 * std::max(1, options.parallelism)),
        pool_(std::max(1, options.parallelism)) {}

  ~S3EgressWriter() override {
    {
      absl::MutexLock l(&mu_);
      abandoned_ = true;  // queued uploads return at once
      auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return inflight_ == 0; };
      mu_.Await(absl::Condition(&idle));
    }
    // A multipart upload left open would keep its parts (and their cost).
    if (!upload_id_.empty()) AbortUpload();
  }

  absl::Status Begin(const std::string& path, uint64_t size) override {
    RETURN_IF_ERROR(Failed());
    key_ = Key(path);
    size_ = size;
    buf_.clear();
    written_ = 0;
    parts_ = 0;
    {
      absl::MutexLock l(&mu_);
      etags_.clear();
    }
    if (size > part_size_) {
      ASSIGN_OR_RETURN(upload_id_, Call([&](http::S3Client* c) {
                         return c->CreateMultipartUpload(where_.bucket, key_);
                       }));
    }
    return absl::OkStatus();
  }

  absl::Status Write(std::string data) override {
    RETURN_IF_ERROR(Failed());
    written_ += data.size();
    if (buf_.empty() && data.size() == part_size_) {
      buf_ = std::move(data);
    } else {
      buf_.append(data);
    }
    while (!upload_id_.empty() && buf_.size() >= part_size_) {
      std::string rest = buf_.substr(part_size_);
      buf_.resize(part_size_);
      SubmitPart(std::move(buf_));
      buf_ = std::move(rest);
    }
    return absl::OkStatus();
  }

  absl::Status End() override {
    RETURN_IF_ERROR(Failed());
    if (written_ != size_) {
      return absl::DataLossError(
          absl::StrCat("egress of ", key_, ": read ", written_, " bytes of ", size_));
    }
    if (upload_id_.empty()) {
      Submit([this, key = key_, data = std::move(buf_)]() {
        return Call([&](http::S3Client* c) { return c->Put(where_.bucket, key, data); });
      });
      buf_.clear();
      return absl::OkStatus();
    }
    if (!buf_.empty() || parts_ == 0) SubmitPart(std::move(buf_));
    buf_.clear();
    // The parts must all be there before they are joined.
    absl::Status st = WaitIdle();
    if (st.ok()) {
      std::vector<std::string> etags;
      {
        absl::MutexLock l(&mu_);
        etags = etags_;
      }
      st = Call([&](http::S3Client* c) {
        return c->CompleteMultipartUpload(where_.bucket, key_, upload_id_, etags);
      });
    }
    if (!st.ok()) {
      AbortUpload();
      SetError(st);
      return st;
    }
    upload_id_.clear();
    return absl::OkStatus();
  }

  absl::Status Finish() override {
    RETURN_IF_ERROR(WaitIdle());
    return Failed();
  }

 private:
  std::string Key(const std::string& path) const {
    if (where_.key.empty()) return path;
    return absl::EndsWith(where_.key, "/") ? where_.key + path
                                           : absl::StrCat(where_.key, "/", path);
  }

  void SubmitPart(std::string data) {
    const int number = ++parts_;
    {
      absl::MutexLock l(&mu_);
      etags_.resize(number);
    }
    Submit([this, number, key = key_, id = upload_id_, data = std::move(data)]() -> absl::Status {
      ASSIGN_OR_RETURN(std::string etag, Call([&](http::S3Client* c) {
                         return c->UploadPart(where_.bucket, key, id, number, data);
                       }));
      absl::MutexLock l(&mu_);
      etags_[number - 1] = std::move(etag);
      return absl::OkStatus();
    });
  }

  // Runs `fn` on the pool once fewer than max_inflight_ uploads are in
  // flight (the caller waits: this bounds the memory held in parts).
  void Submit(std::function<absl::Status()> fn) {
    {
      absl::MutexLock l(&mu_);
      auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return inflight_ < max_inflight_; };
      mu_.Await(absl::Condition(&room));
      ++inflight_;
    }
    pool_.Schedule([this, fn = std::move(fn)]() {
      bool skip;
      {
        absl::MutexLock l(&mu_);
        skip = abandoned_ || !error_.ok();
      }
      absl::Status st = skip ? absl::OkStatus() : fn();
      absl::MutexLock l(&mu_);
      if (!st.ok() && error_.ok()) error_ = st;
      --inflight_;
    });
  }

  absl::Status WaitIdle() {
    absl::MutexLock l(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return inflight_ == 0; };
    mu_.Await(absl::Condition(&idle));
    return error_;
  }

  absl::Status Failed() {
    absl::MutexLock l(&mu_);
    return error_;
  }

  void SetError(const absl::Status& st) {
    absl::MutexLock l(&mu_);
    if (error_.ok()) error_ = st;
  }

  void AbortUpload() {
    absl::Status st = Call([&](http::S3Client* c) {
      return c->AbortMultipartUpload(where_.bucket, key_, upload_id_);
    });
    if (!st.ok()) LOG(WARNING) << "could not abort the multipart upload of " << key_ << ": " << st;
    upload_id_.clear();
  }

  // S3Client is one connection and not thread-safe: each call takes one.
  template <typename F>
  auto Call(F fn) -> decltype(fn(nullptr)) {
    return clients_.Call(std::move(fn));
  }

  const S3EgressOptions options_;
  http::S3ClientPool clients_;
  const http::S3Url where_;
  const size_t part_size_;
  const int max_inflight_;
  // The current file (caller's thread).
  std::string key_;
  uint64_t size_ = 0;
  std::string buf_;
  uint64_t written_ = 0;
  std::string upload_id_;  // a multipart upload in progress
  int parts_ = 0;

  absl::Mutex mu_;
  int inflight_ ABSL_GUARDED_BY(mu_) = 0;
  bool abandoned_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> etags_ ABSL_GUARDED_BY(mu_);
  ThreadPool pool_;  // last: its threads end before the rest goes
};

}  // namespace

dispatcher::EgressOpener MakeS3Egress(const S3EgressOptions& options) {
  return [options](
             const std::string& url) -> absl::StatusOr<std::unique_ptr<dispatcher::EgressWriter>> {
    ASSIGN_OR_RETURN(http::S3Url where, http::ParseS3Url(url));
    S3EgressOptions o = options;
    if (o.s3.credentials.empty()) {
      // Read at each egress, so that rotated credentials are picked up.
      auto creds = http::CredentialsFromEnvironment();
      if (!creds.ok()) return Annotate(creds.status(), "credentials for egress to S3");
      o.s3.credentials = *creds;
    }
    return std::make_unique<S3EgressWriter>(o, std::move(where));
  };
}

}  // namespace tusk::server
