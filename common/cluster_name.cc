#include "common/cluster_name.h"

#include <spdlog/spdlog.h>

#include <cctype>

namespace ashiato {

Status ValidateClusterName(const std::string& name) {
  bool ok = name.size() <= 253;
  for (char c : name) ok = ok && static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
  if (ok) return Status::Ok();
  return InvalidArgument(
      "--cluster-name (or CLUSTER) must be at most 253 bytes without control characters");
}

bool IsLabelValue(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  for (char c : name) {
    if (!alnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

std::string ClusterLabel(const std::string& name) {
  if (IsLabelValue(name)) return name;
  if (!name.empty()) {
    spdlog::warn(
        "--cluster-name \"{}\" is not a valid label value: the ConfigMaps get no "
        "ashiato.io/cluster label (log lines and answers still carry it)",
        name);
  }
  return "";
}

}  // namespace ashiato
