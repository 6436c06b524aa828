// Shared by the fuzz targets in tests/fuzz (docs/reliability.md, "Fuzzing").
// Each target defines LLVMFuzzerTestOneInput; it is linked either with
// libFuzzer (clang, -DASHIATO_FUZZ=ON) or with replay_main.cc, which runs
// it once over each file of its seed corpus (a ctest in every build).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// Aborts (a crash for libFuzzer, a failure for the replay test) when an
// invariant does not hold. Cheap enough to stay on in every build.
#define FUZZ_CHECK(cond, what)                                                              \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: %s\n", __FILE__, __LINE__, #cond, \
                   std::string(what).c_str());                                              \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

namespace ashiato::fuzz {

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// Splits the input at the first occurrence of `sep` (which is dropped);
// `rest` is empty when there is none.
inline std::string_view SplitOnce(std::string_view* text, char sep) {
  size_t p = text->find(sep);
  std::string_view head = text->substr(0, p);
  *text = p == std::string_view::npos ? std::string_view() : text->substr(p + 1);
  return head;
}

}  // namespace ashiato::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
