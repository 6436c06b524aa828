// Durations as flags and query parameters give them ("30s", "1h30m",
// "1.5s", "7d"; a bare number is seconds): ParseDuration.
//
// Invariants: no exception (std::stod/stoll) and no undefined behaviour
// (float-to-integer overflow); a result is never negative; a bare number
// of seconds converts exactly; "<n>ms" of a small integer is exact.
#include <cctype>
#include <string>

#include "common/duration.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ashiato;
  std::string text(fuzz::AsText(data, size));
  auto d = ParseDuration(text);
  if (!d) return 0;
  FUZZ_CHECK(d->count() >= 0, "negative duration from " + text);
  bool digits = !text.empty();
  for (char c : text) digits = digits && std::isdigit(static_cast<unsigned char>(c));
  if (digits) FUZZ_CHECK(d->count() == std::stoll(text) * 1000, "bare seconds of " + text);
  // The canonical spelling in milliseconds parses back to the same value
  // (numbers have at most 15 digits).
  if (d->count() < 1000000000000000LL) {
    auto back = ParseDuration(std::to_string(d->count()) + "ms");
    FUZZ_CHECK(back && *back == *d, "ms round trip of " + text);
  }
  return 0;
}
