#include "agent/pod_filter.h"

#include <fnmatch.h>

namespace ashiato {

bool PodFilter::Matches(const PodRecord& pod) const {
  if (!name_prefix_.empty() && pod.name.rfind(name_prefix_, 0) != 0) return false;
  if (namespaces_.empty()) return true;
  for (const auto& pattern : namespaces_) {
    if (pattern == pod.namespace_) return true;
    if (fnmatch(pattern.c_str(), pod.namespace_.c_str(), 0) == 0) return true;
  }
  return false;
}

}  // namespace ashiato
