// AnnotationCapture: which pod annotations the agent copies into its records
// (--capture-annotations). Nothing is captured unless configured: annotations
// can be large (kubectl's last-applied-configuration) or sensitive.
//
// Each entry is an exact key ("example.com/team") or a prefix ending in "*"
// ("example.com/*", "*" = every key). What is captured per pod is bounded
// (docs/agent.md): keys are taken in byte order while key + value bytes fit
// in kMaxAnnotationBytes and at most kMaxAnnotations keys; an annotation that
// does not fit is left out and counted in the synthetic annotation
// kAnnotationsOmittedKey ("ashiato.io/annotations-omitted": "<count>").
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace ashiato {

inline constexpr size_t kMaxAnnotationBytes = 4096;
inline constexpr size_t kMaxAnnotations = 32;
inline constexpr const char* kAnnotationsOmittedKey = "ashiato.io/annotations-omitted";

class AnnotationCapture {
 public:
  // Captures nothing.
  AnnotationCapture() = default;
  // Empty entries are skipped. InvalidArgument for a "*" anywhere but at
  // the end, or a key longer than 253 + 1 + 63 bytes (the longest valid
  // annotation key).
  static Result<AnnotationCapture> Parse(const std::vector<std::string>& entries);

  bool empty() const { return keys_.empty() && prefixes_.empty(); }
  bool Matches(const std::string& key) const;
  // The captured subset of `all`, within the bounds above.
  std::map<std::string, std::string> Select(const std::map<std::string, std::string>& all) const;

 private:
  std::vector<std::string> keys_;      // Sorted.
  std::vector<std::string> prefixes_;  // Without the "*".
};

}  // namespace ashiato
