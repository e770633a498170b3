#pragma once

// SHA-256 content addresses. Computed with OpenSSL, which uses the CPU's SHA
// extensions where present. Thread-safe: all functions are pure.

#include <array>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tusk {

// A 32-byte SHA-256 digest. A value type: cheap to copy, ordered, hashable.
struct Hash {
  static constexpr size_t kSize = 32;
  std::array<uint8_t, kSize> bytes{};

  // The all-zero hash; used as "no hash".
  bool IsZero() const;
  // 64 lowercase hex characters.
  std::string Hex() const;
  // The first 16 hex characters, for logs and messages.
  std::string ShortHex() const { return Hex().substr(0, 16); }
  // The raw 32 bytes as a string (for keys and protobuf bytes fields).
  std::string Raw() const {
    return std::string(reinterpret_cast<const char*>(bytes.data()), kSize);
  }
  // The first 8 bytes as an integer (for in-memory hash tables).
  uint64_t Prefix64() const {
    uint64_t v;
    std::memcpy(&v, bytes.data(), sizeof(v));
    return v;
  }

  static absl::StatusOr<Hash> FromHex(absl::string_view hex);
  static absl::StatusOr<Hash> FromRaw(absl::string_view raw);

  friend bool operator==(const Hash& a, const Hash& b) { return a.bytes == b.bytes; }
  friend bool operator!=(const Hash& a, const Hash& b) { return a.bytes != b.bytes; }
  friend bool operator<(const Hash& a, const Hash& b) { return a.bytes < b.bytes; }
  template <typename H>
  friend H AbslHashValue(H h, const Hash& x) {
    return H::combine(std::move(h), x.Prefix64());
  }
};

// SHA-256 of `data`.
Hash Sha256(absl::string_view data);

// Incremental SHA-256.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;
  void Update(absl::string_view data);
  // The digest of everything since construction or the last Finish(); the
  // hasher then starts over.
  Hash Finish();

 private:
  void* ctx_;  // EVP_MD_CTX*, kept out of the header (OpenSSL is private to common).
};

// Lowercase hex of arbitrary bytes, and back.
std::string ToHex(absl::string_view bytes);
absl::StatusOr<std::string> FromHex(absl::string_view hex);

}  // namespace tusk
