#include "common/annotation_capture.h"

#include <algorithm>

namespace ashiato {

Result<AnnotationCapture> AnnotationCapture::Parse(const std::vector<std::string>& entries) {
  AnnotationCapture c;
  for (const std::string& e : entries) {
    if (e.empty()) continue;  // "a,,b", a trailing comma, an empty variable.
    if (e.size() > 253 + 1 + 63 + 1) {
      return InvalidArgument("--capture-annotations: \"" + e.substr(0, 40) +
                             "...\" is longer than any annotation key");
    }
    size_t star = e.find('*');
    if (star != std::string::npos && star != e.size() - 1) {
      return InvalidArgument("--capture-annotations: \"" + e +
                             "\": \"*\" is only allowed at the end (a prefix)");
    }
    if (star == std::string::npos) {
      c.keys_.push_back(e);
    } else {
      c.prefixes_.push_back(e.substr(0, star));
    }
  }
  std::sort(c.keys_.begin(), c.keys_.end());
  return c;
}

bool AnnotationCapture::Matches(const std::string& key) const {
  if (std::binary_search(keys_.begin(), keys_.end(), key)) return true;
  for (const auto& p : prefixes_) {
    if (key.compare(0, p.size(), p) == 0) return true;
  }
  return false;
}

std::map<std::string, std::string> AnnotationCapture::Select(
    const std::map<std::string, std::string>& all) const {
  std::map<std::string, std::string> out;
  if (empty()) return out;
  size_t bytes = 0, omitted = 0;
  for (const auto& [k, v] : all) {
    if (!Matches(k)) continue;
    if (out.size() >= kMaxAnnotations || bytes + k.size() + v.size() > kMaxAnnotationBytes) {
      ++omitted;
      continue;
    }
    bytes += k.size() + v.size();
    out.emplace_hint(out.end(), k, v);
  }
  if (omitted > 0) out[kAnnotationsOmittedKey] = std::to_string(omitted);
  return out;
}

}  // namespace ashiato
