#include "common/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace tusk {

absl::Status MkdirAll(const std::string& dir) {
  // The common case is a directory that exists or whose parent does: one
  // mkdir, not one per path component.
  if (dir.empty() || ::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return absl::OkStatus();
  if (errno == ENOENT) {
    size_t slash = dir.find_last_of('/');
    if (slash != std::string::npos && slash > 0) {
      absl::Status parent = MkdirAll(dir.substr(0, slash));
      if (!parent.ok()) return parent;
      if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return absl::OkStatus();
    }
  }
  return absl::InternalError(absl::StrCat("mkdir ", dir, ": ", std::strerror(errno)));
}

absl::Status RemoveAll(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) {
    // A directory without write permission (user code may leave one) keeps
    // its entries: make every directory writable, then try again.
    std::error_code walk;
    if (fs::is_directory(fs::symlink_status(path, walk))) {
      fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, walk);
      for (auto it = fs::recursive_directory_iterator(path, walk);
           !walk && it != fs::recursive_directory_iterator(); it.increment(walk)) {
        std::error_code ignored;  // the retry below reports what still fails
        if (it->is_directory(ignored) && !it->is_symlink(ignored)) {
          fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ignored);
        }
      }
    }
    ec.clear();
    fs::remove_all(path, ec);
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot remove ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status EmptyDir(const std::string& dir) {
  RETURN_IF_ERROR(MkdirAll(dir));
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    RETURN_IF_ERROR(RemoveAll(entry.path().string()));
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status WriteSecretFile(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  auto fail = [&](const std::string& what) {
    absl::Status s = absl::InternalError(absl::StrCat(what, " ", tmp, ": ", std::strerror(errno)));
    ::unlink(tmp.c_str());
    return s;
  };
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail("cannot create");
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return fail("cannot write");
    }
    done += n;
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return fail("cannot sync");
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename into place");
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, " does not exist"));
    return absl::InternalError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status s =
          absl::InternalError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    out.append(buf, n);
    if (out.size() > max_bytes) {
      ::close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is longer than ", max_bytes, " bytes"));
    }
  }
  ::close(fd);
  return out;
}

}  // namespace tusk
