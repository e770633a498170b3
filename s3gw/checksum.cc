#include "s3gw/checksum.h"

#include <openssl/evp.h>

#include <array>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace tusk::s3gw {
namespace {

// A reflected CRC-32 table for `poly`.
std::array<uint32_t, 256> CrcTable(uint32_t poly) {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
    t[i] = c;
  }
  return t;
}

uint32_t Crc(const std::array<uint32_t, 256>& table, uint32_t crc, absl::string_view data) {
  crc = ~crc;
  for (unsigned char b : data) crc = table[(crc ^ b) & 0xff] ^ (crc >> 8);
  return ~crc;
}

class CrcChecksum final : public BodyChecksum {
 public:
  explicit CrcChecksum(bool castagnoli) : castagnoli_(castagnoli) {}
  void Update(absl::string_view data) override {
    crc_ = castagnoli_ ? Crc32c(crc_, data) : Crc32(crc_, data);
  }
  std::string Base64() override {
    char be[4] = {static_cast<char>(crc_ >> 24), static_cast<char>(crc_ >> 16),
                  static_cast<char>(crc_ >> 8), static_cast<char>(crc_)};
    return absl::Base64Escape(absl::string_view(be, 4));
  }

 private:
  const bool castagnoli_;
  uint32_t crc_ = 0;
};

class DigestChecksum final : public BodyChecksum {
 public:
  explicit DigestChecksum(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(ctx_, md, nullptr);
  }
  ~DigestChecksum() override { EVP_MD_CTX_free(ctx_); }
  void Update(absl::string_view data) override { EVP_DigestUpdate(ctx_, data.data(), data.size()); }
  std::string Base64() override {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, out, &n);
    return absl::Base64Escape(absl::string_view(reinterpret_cast<char*>(out), n));
  }

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace

uint32_t Crc32(uint32_t crc, absl::string_view data) {
  static const std::array<uint32_t, 256> table = CrcTable(0xEDB88320u);
  return Crc(table, crc, data);
}

uint32_t Crc32c(uint32_t crc, absl::string_view data) {
  static const std::array<uint32_t, 256> table = CrcTable(0x82F63B78u);
  return Crc(table, crc, data);
}

absl::StatusOr<std::unique_ptr<BodyChecksum>> BodyChecksum::Make(absl::string_view algorithm) {
  std::string a = absl::AsciiStrToLower(algorithm);
  if (a == "crc32") return std::unique_ptr<BodyChecksum>(new CrcChecksum(false));
  if (a == "crc32c") return std::unique_ptr<BodyChecksum>(new CrcChecksum(true));
  if (a == "md5") return std::unique_ptr<BodyChecksum>(new DigestChecksum(EVP_md5()));
  if (a == "sha1") return std::unique_ptr<BodyChecksum>(new DigestChecksum(EVP_sha1()));
  if (a == "sha256") return std::unique_ptr<BodyChecksum>(new DigestChecksum(EVP_sha256()));
  return absl::InvalidArgumentError(absl::StrCat(
      "checksum algorithm '", algorithm, "' is not supported (crc32, crc32c, sha1, sha256)"));
}

bool IsChecksumHeader(absl::string_view name, std::string* algorithm) {
  std::string n = absl::AsciiStrToLower(name);
  absl::string_view rest = n;
  if (!absl::ConsumePrefix(&rest, "x-amz-checksum-")) return false;
  if (rest == "algorithm" || rest == "type" || rest == "mode") return false;
  *algorithm = std::string(rest);
  return true;
}

}  // namespace tusk::s3gw
