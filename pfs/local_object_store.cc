#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <list>
#include <mutex>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "pfs/object_store.h"

namespace tusk::pfs {
namespace {

absl::Status ErrnoError(absl::string_view what, const std::string& path, int err) {
  std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) {
    msg = absl::StrCat(err == ENOSPC ? "no space left on the device" : "disk quota exceeded",
                       " while writing ", path, " (", what, ")");
  }
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(msg);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(msg);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

}  // namespace

absl::Status ValidateObjectKey(const std::string& key) {
  if (key.empty() || key[0] == '/' || key.find("..") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("invalid object key '", key, "'"));
  }
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '/' || c == '-';
    if (!ok) return absl::InvalidArgumentError(absl::StrCat("invalid object key '", key, "'"));
  }
  return absl::OkStatus();
}

namespace {

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open directory", dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoError("fsync directory", dir, err);
  return absl::OkStatus();
}

// Keeps recently used read descriptors open: pack reads are many small preads
// into few files.
class FdCache {
 public:
  explicit FdCache(size_t capacity) : capacity_(capacity) {}
  ~FdCache() {
    for (auto& [path, entry] : map_) ::close(entry.fd);
  }

  // Returns an fd for `path` with a reference held; Release() it after use.
  absl::StatusOr<int> Acquire(const std::string& path) {
    absl::MutexLock lock(&mu_);
    auto it = map_.find(path);
    if (it != map_.end()) {
      it->second.refs++;
      lru_.splice(lru_.begin(), lru_, it->second.lru_pos);
      return it->second.fd;
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open", path, errno);
    lru_.push_front(path);
    map_[path] = Entry{fd, 1, lru_.begin()};
    EvictLocked();
    return fd;
  }

  void Release(const std::string& path) {
    absl::MutexLock lock(&mu_);
    auto it = map_.find(path);
    if (it != map_.end()) it->second.refs--;
    EvictLocked();
  }

  void Forget(const std::string& path) {
    absl::MutexLock lock(&mu_);
    auto it = map_.find(path);
    if (it == map_.end()) return;
    if (it->second.refs == 0) {
      ::close(it->second.fd);
      lru_.erase(it->second.lru_pos);
      map_.erase(it);
    }
  }

 private:
  struct Entry {
    int fd;
    int refs;
    std::list<std::string>::iterator lru_pos;
  };
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = lru_.end();
    while (map_.size() > capacity_ && it != lru_.begin()) {
      --it;
      auto m = map_.find(*it);
      if (m->second.refs > 0) continue;
      ::close(m->second.fd);
      map_.erase(m);
      it = lru_.erase(it);
    }
  }

  const size_t capacity_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> map_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);
};

class LocalObjectStore : public ObjectStore {
 public:
  explicit LocalObjectStore(std::string root) : root_(std::move(root)), fds_(256) {}

  static constexpr size_t kDirectMin = 1 << 20;
  static constexpr size_t kDirectAlign = 4096;
  static constexpr size_t kDirectStage = 4 << 20;

  absl::Status Put(const std::string& key, absl::string_view data) override {
    return PutParts(key, {data});
  }

  absl::Status PutParts(const std::string& key,
                        const std::vector<absl::string_view>& parts) override {
    RETURN_IF_ERROR(ValidateObjectKey(key));
    std::string path = Path(key);
    std::string dir = path.substr(0, path.rfind('/'));
    RETURN_IF_ERROR(EnsureDir(dir));
    std::string tmp = absl::StrCat(dir, "/.tmp-", ::getpid(), "-", counter_.fetch_add(1));
    size_t total = 0;
    for (absl::string_view part : parts) total += part.size();
    absl::Status s;
    int fd = -1;
    if (total >= kDirectMin && direct_.load(std::memory_order_relaxed)) {
      fd = WriteDirect(tmp, parts, total, &s);
    }
    if (fd < 0 && s.ok()) {
      fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) return ErrnoError("create", tmp, errno);
      for (absl::string_view part : parts) {
        if (s.ok()) s = WriteAll(fd, part, tmp);
      }
    }
    if (fd < 0) return s;
    if (s.ok() && ::fdatasync(fd) != 0) s = ErrnoError("fsync", tmp, errno);
    if (::close(fd) != 0 && s.ok()) s = ErrnoError("close", tmp, errno);
    if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = ErrnoError("rename", tmp, errno);
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    fds_.Forget(path);
    return FsyncDir(dir);
  }

  // Large objects (packs) bypass the page cache: they are written once, synced
  // at once and read back rarely, so copying them into the cache and writing
  // them back later costs CPU for nothing. Returns an open descriptor holding
  // the whole object, or -1 with `s` OK when the file system refuses direct
  // I/O (the caller then writes through the cache), or -1 with an error.
  int WriteDirect(const std::string& tmp, const std::vector<absl::string_view>& parts, size_t total,
                  absl::Status* s) {
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
    if (fd < 0) {
      if (errno == EINVAL) {
        direct_.store(false, std::memory_order_relaxed);
      } else {
        *s = ErrnoError("create", tmp, errno);
      }
      return -1;
    }
    // O_DIRECT needs aligned memory, offsets and lengths: the parts are staged
    // through an aligned buffer, and the last partial block goes through a
    // second, cached descriptor.
    size_t body = total / kDirectAlign * kDirectAlign;
    size_t stage_size = std::min(kDirectStage, body);
    void* mem = nullptr;
    if (body == 0 || ::posix_memalign(&mem, kDirectAlign, stage_size) != 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return -1;  // nothing aligned to write, or no memory: write through the cache
    }
    std::unique_ptr<char, decltype(&std::free)> stage(static_cast<char*>(mem), &std::free);
    size_t staged = 0;   // bytes in the stage buffer
    size_t written = 0;  // bytes of the body on disk
    auto flush = [&]() {
      size_t done = 0;
      while (done < staged) {
        ssize_t n = ::write(fd, stage.get() + done, staged - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EINVAL && written == 0 && done == 0) {
          // The file system takes O_DIRECT opens but not writes: stop trying.
          direct_.store(false, std::memory_order_relaxed);
          return false;
        }
        if (n <= 0) {
          *s = ErrnoError("write", tmp, n < 0 ? errno : EIO);
          return false;
        }
        done += static_cast<size_t>(n);
      }
      written += staged;
      staged = 0;
      return true;
    };
    std::string tail;
    size_t at = 0;
    bool ok = true;
    for (absl::string_view part : parts) {
      while (ok && !part.empty() && at < body) {
        size_t n = std::min({part.size(), stage_size - staged, body - at});
        std::memcpy(stage.get() + staged, part.data(), n);
        staged += n;
        at += n;
        part.remove_prefix(n);
        if (staged == stage_size || at == body) ok = flush();
      }
      if (!ok) break;
      tail.append(part.data(), part.size());
      at += part.size();
    }
    if (!ok) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return -1;  // `s` says whether it failed or should fall back
    }
    if (!tail.empty()) {
      int tail_fd = ::open(tmp.c_str(), O_WRONLY | O_CLOEXEC);
      if (tail_fd < 0) {
        *s = ErrnoError("open", tmp, errno);
      } else {
        absl::string_view rest = tail;
        off_t off = static_cast<off_t>(body);
        while (!rest.empty()) {
          ssize_t n = ::pwrite(tail_fd, rest.data(), rest.size(), off);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) {
            *s = ErrnoError("write", tmp, errno);
            break;
          }
          rest.remove_prefix(static_cast<size_t>(n));
          off += n;
        }
        // The caller's fdatasync on `fd` covers these cached pages too.
        ::close(tail_fd);
      }
    }
    if (!s->ok()) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return -1;
    }
    return fd;
  }

  void Prefetch(const std::string& key, uint64_t offset, uint64_t length) override {
    if (!ValidateObjectKey(key).ok()) return;
    std::string path = Path(key);
    auto fd = fds_.Acquire(path);
    if (!fd.ok()) return;
    // Asks the kernel to read the range in the background; the result only
    // affects speed.
    (void)::posix_fadvise(*fd, static_cast<off_t>(offset), static_cast<off_t>(length),
                          POSIX_FADV_WILLNEED);
    fds_.Release(path);
  }

  absl::StatusOr<std::string> GetRange(const std::string& key, uint64_t offset,
                                       uint64_t length) override {
    RETURN_IF_ERROR(ValidateObjectKey(key));
    std::string path = Path(key);
    ASSIGN_OR_RETURN(int fd, fds_.Acquire(path));
    std::string out(length, '\0');
    size_t done = 0;
    absl::Status s;
    while (done < length) {
      ssize_t n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        s = ErrnoError("read", path, errno);
        break;
      }
      if (n == 0) {
        s = absl::OutOfRangeError(absl::StrCat("object ", key, " is truncated: wanted ", length,
                                               " bytes at offset ", offset, ", got ", done));
        break;
      }
      done += static_cast<size_t>(n);
    }
    fds_.Release(path);
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<uint64_t> Size(const std::string& key) override {
    RETURN_IF_ERROR(ValidateObjectKey(key));
    struct stat st;
    std::string path = Path(key);
    if (::stat(path.c_str(), &st) != 0) return ErrnoError("stat", path, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  absl::Status Delete(const std::string& key) override {
    RETURN_IF_ERROR(ValidateObjectKey(key));
    std::string path = Path(key);
    fds_.Forget(path);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError("unlink", path, errno);
    return absl::OkStatus();
  }

  absl::Status List(const std::string& prefix,
                    const std::function<void(const std::string&, uint64_t)>& fn) override {
    std::vector<std::pair<std::string, uint64_t>> out;
    RETURN_IF_ERROR(Walk("", prefix, &out));
    std::sort(out.begin(), out.end());
    for (auto& [k, size] : out) fn(k, size);
    return absl::OkStatus();
  }

  std::string Describe() const override { return absl::StrCat("local:", root_); }

 private:
  std::string Path(const std::string& key) const { return absl::StrCat(root_, "/", key); }

  absl::Status EnsureDir(const std::string& dir) {
    {
      absl::MutexLock lock(&mu_);
      if (known_dirs_.contains(dir)) return absl::OkStatus();
    }
    // mkdir -p, then remember it.
    for (size_t i = root_.size() + 1; i <= dir.size(); ++i) {
      if (i == dir.size() || dir[i] == '/') {
        std::string part = dir.substr(0, i);
        if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
          return ErrnoError("mkdir", part, errno);
        }
      }
    }
    absl::MutexLock lock(&mu_);
    known_dirs_.insert(dir);
    return absl::OkStatus();
  }

  absl::Status Walk(const std::string& rel, const std::string& prefix,
                    std::vector<std::pair<std::string, uint64_t>>* out) {
    std::string dir = rel.empty() ? root_ : Path(rel);
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      if (errno == ENOENT) return absl::OkStatus();
      return ErrnoError("opendir", dir, errno);
    }
    std::vector<std::string> subdirs;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == ".." || name.rfind(".tmp-", 0) == 0) continue;
      std::string key = rel.empty() ? name : absl::StrCat(rel, "/", name);
      struct stat st;
      if (::stat(Path(key).c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        // Descend only where the prefix can still match.
        std::string k = key + "/";
        if (prefix.compare(0, std::min(prefix.size(), k.size()), k, 0,
                           std::min(prefix.size(), k.size())) == 0) {
          subdirs.push_back(key);
        }
      } else if (key.compare(0, prefix.size(), prefix) == 0) {
        out->emplace_back(key, static_cast<uint64_t>(st.st_size));
      }
    }
    ::closedir(d);
    for (const auto& s : subdirs) RETURN_IF_ERROR(Walk(s, prefix, out));
    return absl::OkStatus();
  }

  const std::string root_;
  std::atomic<uint64_t> counter_{0};
  std::atomic<bool> direct_{true};  // false once the file system refused O_DIRECT
  FdCache fds_;
  absl::Mutex mu_;
  absl::flat_hash_set<std::string> known_dirs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::Status ObjectStore::PutParts(const std::string& key,
                                   const std::vector<absl::string_view>& parts) {
  if (parts.size() == 1) return Put(key, parts[0]);
  size_t total = 0;
  for (absl::string_view p : parts) total += p.size();
  std::string all;
  all.reserve(total);
  for (absl::string_view p : parts) all.append(p.data(), p.size());
  return Put(key, all);
}

absl::StatusOr<std::string> ObjectStore::Get(const std::string& key) {
  ASSIGN_OR_RETURN(uint64_t size, Size(key));
  return GetRange(key, 0, size);
}

absl::StatusOr<std::unique_ptr<ObjectStore>> OpenLocalObjectStore(const std::string& root) {
  if (root.empty()) return absl::InvalidArgumentError("object store directory is empty");
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  for (size_t i = 1; i <= r.size(); ++i) {
    if (i == r.size() || r[i] == '/') {
      std::string part = r.substr(0, i);
      if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoError("mkdir", part, errno);
      }
    }
  }
  return std::unique_ptr<ObjectStore>(new LocalObjectStore(r));
}

}  // namespace tusk::pfs
