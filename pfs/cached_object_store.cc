// The local disk cache in front of a remote object store (see object_store.h).
//
// An entry is one ranged read, in a file named by the SHA-256 of
// "key\0offset\0length", holding a small header (magic, length, SHA-256 of
// the data) and the data. Entries are written to a temporary file and renamed
// into place, so a crash leaves whole entries or none; the header's hash
// catches anything else. Ranges of immutable objects never go stale; ranges
// of a deleted object simply age out.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <future>
#include <list>
#include <memory>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/status.h"
#include "common/thread_pool.h"
#include "pfs/object_store.h"

namespace tusk::pfs {
namespace {

constexpr char kMagic[8] = {'T', 'U', 'S', 'K', 'C', 'A', 'C', '1'};
constexpr size_t kHeaderSize = 8 + 8 + Hash::kSize;

class CachedObjectStore : public ObjectStore {
 public:
  CachedObjectStore(std::unique_ptr<ObjectStore> base, const CacheOptions& options)
      : base_(std::move(base)),
        options_(options),
        prefetch_(std::max(1, options.prefetch_threads)) {}

  ~CachedObjectStore() override = default;

  absl::Status Load() {
    RETURN_IF_ERROR(MkdirAll(options_.dir));
    struct Found {
      std::string name;
      uint64_t bytes;
      int64_t mtime_ns;
    };
    std::vector<Found> found;
    DIR* d = ::opendir(options_.dir.c_str());
    if (d == nullptr) {
      return absl::InternalError(
          absl::StrCat("cannot open cache directory ", options_.dir, ": ", std::strerror(errno)));
    }
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string path = Path(name);
      if (name.size() != 64) {  // a temporary file left by a crash
        ::unlink(path.c_str());
        continue;
      }
      struct stat st;
      if (::stat(path.c_str(), &st) != 0) continue;
      found.push_back({name, static_cast<uint64_t>(st.st_size),
                       static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec});
    }
    ::closedir(d);
    std::sort(found.begin(), found.end(),
              [](const Found& a, const Found& b) { return a.mtime_ns < b.mtime_ns; });
    absl::MutexLock lock(&mu_);
    for (auto& f : found) {
      lru_.push_front(f.name);
      entries_[f.name] = {f.bytes, lru_.begin()};
      used_ += f.bytes;
    }
    EvictLocked();
    LOG(INFO) << "object cache " << options_.dir << ": " << entries_.size() << " entries, " << used_
              << " bytes (limit " << options_.max_bytes << ")";
    return absl::OkStatus();
  }

  absl::Status Put(const std::string& key, absl::string_view data) override {
    return base_->Put(key, data);
  }
  absl::Status PutParts(const std::string& key,
                        const std::vector<absl::string_view>& parts) override {
    return base_->PutParts(key, parts);
  }
  absl::StatusOr<std::string> Get(const std::string& key) override { return base_->Get(key); }

  absl::StatusOr<std::string> GetRange(const std::string& key, uint64_t offset,
                                       uint64_t length) override {
    std::string name = EntryName(key, offset, length);
    if (auto hit = Lookup(name, length)) {
      hits_++;
      return std::move(*hit);
    }
    // A prefetch of the same range may be under way: wait for it rather than
    // reading the range twice.
    std::shared_future<void> pending;
    {
      absl::MutexLock lock(&mu_);
      auto it = inflight_.find(name);
      if (it != inflight_.end()) pending = it->second;
    }
    if (pending.valid()) pending.wait();
    // Again: a prefetch that ended meanwhile inserted the entry before it
    // left the in-flight map.
    if (auto hit = Lookup(name, length)) {
      hits_++;
      return std::move(*hit);
    }
    misses_++;
    ASSIGN_OR_RETURN(std::string data, base_->GetRange(key, offset, length));
    Insert(name, data);
    return data;
  }

  void Prefetch(const std::string& key, uint64_t offset, uint64_t length) override {
    if (options_.max_bytes == 0) return;
    std::string name = EntryName(key, offset, length);
    auto promise = std::make_shared<std::promise<void>>();
    {
      absl::MutexLock lock(&mu_);
      if (entries_.contains(name) || inflight_.contains(name)) return;
      // Bounded: a prefetch is a hint, and a long queue only delays reads.
      if (inflight_.size() >= static_cast<size_t>(4 * prefetch_.size())) return;
      inflight_[name] = promise->get_future().share();
    }
    prefetch_.Schedule([this, key, offset, length, name, promise] {
      auto data = base_->GetRange(key, offset, length);
      if (data.ok()) {
        misses_++;
        Insert(name, *data);
      }
      {
        absl::MutexLock lock(&mu_);
        inflight_.erase(name);
      }
      promise->set_value();
    });
  }

  absl::StatusOr<uint64_t> Size(const std::string& key) override { return base_->Size(key); }
  absl::Status Delete(const std::string& key) override { return base_->Delete(key); }
  absl::Status List(const std::string& prefix,
                    const std::function<void(const std::string& key, uint64_t size)>& fn) override {
    return base_->List(prefix, fn);
  }
  std::string Describe() const override {
    return absl::StrCat(base_->Describe(), " (cache ", options_.dir, ")");
  }
  ObjectStoreStats Stats() const override {
    ObjectStoreStats s = base_->Stats();
    s.set_cache_hits(hits_);
    s.set_cache_misses(misses_);
    return s;
  }

 private:
  std::string Path(const std::string& name) const { return options_.dir + "/" + name; }

  static std::string EntryName(const std::string& key, uint64_t offset, uint64_t length) {
    return Sha256(absl::StrCat(key, std::string(1, '\0'), offset, std::string(1, '\0'), length))
        .Hex();
  }

  // The cached data, or nullopt (absent or damaged: a damaged entry is dropped).
  std::optional<std::string> Lookup(const std::string& name, uint64_t length) {
    {
      absl::MutexLock lock(&mu_);
      auto it = entries_.find(name);
      if (it == entries_.end()) return std::nullopt;
      lru_.splice(lru_.begin(), lru_, it->second.lru_pos);
    }
    std::string path = Path(name);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    std::string out;
    bool good = false;
    if (fd >= 0) {
      char header[kHeaderSize];
      out.resize(length);
      good = ::pread(fd, header, kHeaderSize, 0) == static_cast<ssize_t>(kHeaderSize) &&
             std::memcmp(header, kMagic, 8) == 0;
      uint64_t stored_len = 0;
      if (good) {
        std::memcpy(&stored_len, header + 8, 8);
        good = stored_len == length;
      }
      size_t done = 0;
      while (good && done < length) {
        ssize_t n =
            ::pread(fd, out.data() + done, length - done, static_cast<off_t>(kHeaderSize + done));
        if (n <= 0) {
          good = false;
          break;
        }
        done += static_cast<size_t>(n);
      }
      ::close(fd);
      if (good) {
        Hash h = Sha256(out);
        good = std::memcmp(h.bytes.data(), header + 16, Hash::kSize) == 0;
      }
    }
    if (good) return out;
    LOG(WARNING) << "object cache entry " << path << " is damaged; reading from the store";
    Remove(name);
    return std::nullopt;
  }

  void Insert(const std::string& name, const std::string& data) {
    if (options_.max_bytes == 0 || data.size() + kHeaderSize > options_.max_bytes) return;
    {
      absl::MutexLock lock(&mu_);
      if (entries_.contains(name)) return;
    }
    std::string path = Path(name);
    std::string tmp = absl::StrCat(path, ".", tmp_seq_++, ".tmp");
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;  // a cache that cannot write only costs speed
    std::string header(kMagic, 8);
    uint64_t len = data.size();
    header.append(reinterpret_cast<const char*>(&len), 8);
    header.append(Sha256(data).Raw());
    bool ok = WriteFully(fd, header) && WriteFully(fd, data);
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
      ::unlink(tmp.c_str());
      return;
    }
    absl::MutexLock lock(&mu_);
    if (entries_.contains(name)) return;
    lru_.push_front(name);
    uint64_t bytes = data.size() + kHeaderSize;
    entries_[name] = {bytes, lru_.begin()};
    used_ += bytes;
    EvictLocked();
  }

  static bool WriteFully(int fd, absl::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::write(fd, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  void Remove(const std::string& name) {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(name);
    if (it == entries_.end()) return;
    used_ -= it->second.bytes;
    lru_.erase(it->second.lru_pos);
    entries_.erase(it);
    ::unlink(Path(name).c_str());
  }

  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (used_ > options_.max_bytes && !lru_.empty()) {
      const std::string& victim = lru_.back();
      auto it = entries_.find(victim);
      used_ -= it->second.bytes;
      ::unlink(Path(victim).c_str());
      entries_.erase(it);
      lru_.pop_back();
    }
  }

  struct Entry {
    uint64_t bytes;
    std::list<std::string>::iterator lru_pos;
  };

  std::unique_ptr<ObjectStore> base_;
  const CacheOptions options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);  // most recent first
  uint64_t used_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, std::shared_future<void>> inflight_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> tmp_seq_{0};
  std::atomic<uint64_t> hits_{0}, misses_{0};
  ThreadPool prefetch_;  // last: its tasks finish before the rest goes
};

}  // namespace

absl::StatusOr<std::unique_ptr<ObjectStore>> OpenCachedObjectStore(
    std::unique_ptr<ObjectStore> base, const CacheOptions& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("object cache without a directory");
  auto store = std::make_unique<CachedObjectStore>(std::move(base), options);
  RETURN_IF_ERROR(store->Load());
  return std::unique_ptr<ObjectStore>(std::move(store));
}

}  // namespace tusk::pfs
