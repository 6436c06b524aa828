// Byte sizes as flags give them ("512Ki", "200MB", "1048576"):
// ParseByteSize.
//
// Invariants: an accepted text is digits then a known suffix, and the value
// is exactly digits × the suffix's multiplier, without overflow (checked in
// 128-bit arithmetic); a value too large for 64 bits is rejected.
#include <cctype>
#include <map>
#include <string>

#include "common/byte_size.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ashiato;
  std::string text(fuzz::AsText(data, size));
  auto n = ParseByteSize(text);
  static const std::map<std::string, unsigned __int128> kMult = {{"", 1},
                                                                 {"B", 1},
                                                                 {"Ki", 1ULL << 10},
                                                                 {"Mi", 1ULL << 20},
                                                                 {"Gi", 1ULL << 30},
                                                                 {"Ti", 1ULL << 40},
                                                                 {"KiB", 1ULL << 10},
                                                                 {"MiB", 1ULL << 20},
                                                                 {"GiB", 1ULL << 30},
                                                                 {"TiB", 1ULL << 40},
                                                                 {"k", 1000},
                                                                 {"K", 1000},
                                                                 {"KB", 1000},
                                                                 {"M", 1000000},
                                                                 {"MB", 1000000},
                                                                 {"G", 1000000000},
                                                                 {"GB", 1000000000},
                                                                 {"T", 1000000000000},
                                                                 {"TB", 1000000000000}};
  size_t i = 0;
  unsigned __int128 v = 0;
  bool overflow = false;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    v = v * 10 + static_cast<unsigned>(text[i] - '0');
    if (v > UINT64_MAX) overflow = true;
    if (overflow) v = static_cast<unsigned __int128>(UINT64_MAX) + 1;  // Stay bounded.
    ++i;
  }
  auto mult = kMult.find(text.substr(i));
  bool valid = i > 0 && mult != kMult.end() && !overflow && v * mult->second <= UINT64_MAX;
  FUZZ_CHECK(n.has_value() == valid, "accepted/rejected wrongly: " + text);
  if (n) FUZZ_CHECK(*n == static_cast<uint64_t>(v * mult->second), "wrong value for " + text);
  return 0;
}
