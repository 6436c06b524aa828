#include "common/sha256.h"

#include <mbedtls/sha256.h>

namespace ashiato {

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[32];
  // Cannot fail for SHA-256 without a hardware accelerator hook.
  mbedtls_sha256_ret(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest,
                     /*is224=*/0);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(64, '0');
  for (size_t i = 0; i < sizeof(digest); ++i) {
    hex[2 * i] = kHex[digest[i] >> 4];
    hex[2 * i + 1] = kHex[digest[i] & 15];
  }
  return hex;
}

}  // namespace ashiato
