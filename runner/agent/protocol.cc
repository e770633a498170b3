#include "runner/agent/protocol.h"

#include <errno.h>
#include <unistd.h>

namespace tusk::runner::agent {
namespace {

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool ReadAll(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

}  // namespace

bool WriteFrame(int fd, char type, const std::string& payload) {
  if (payload.size() > kMaxFrame) return false;
  const uint32_t n = static_cast<uint32_t>(payload.size());
  char header[5] = {type, static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                    static_cast<char>(n >> 8), static_cast<char>(n)};
  return WriteAll(fd, header, sizeof(header)) && WriteAll(fd, payload.data(), payload.size());
}

bool ReadFrame(int fd, char* type, std::string* payload) {
  unsigned char header[5];
  if (!ReadAll(fd, reinterpret_cast<char*>(header), sizeof(header))) return false;
  const uint32_t n = (uint32_t{header[1]} << 24) | (uint32_t{header[2]} << 16) |
                     (uint32_t{header[3]} << 8) | uint32_t{header[4]};
  if (n > kMaxFrame) return false;
  *type = static_cast<char>(header[0]);
  payload->resize(n);
  return n == 0 || ReadAll(fd, payload->data(), n);
}

}  // namespace tusk::runner::agent
