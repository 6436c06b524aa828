// SHA-256 as lowercase hex, on mbedTLS: the static agent's TLS library
// (docs/benchmarks.md, "Agent memory"), so it carries no second crypto library.
#ifndef ASHIATO_COMMON_SHA256_H_
#define ASHIATO_COMMON_SHA256_H_

#include <string>
#include <string_view>

namespace ashiato {

// The 64 hex digits of SHA-256(data).
std::string Sha256Hex(std::string_view data);

}  // namespace ashiato

#endif  // ASHIATO_COMMON_SHA256_H_
