// PodFilter: the client-side filters of the old poller (--namespace exact or
// glob, --name prefix). The label selector is applied by the API server.
#pragma once

#include <string>
#include <vector>

#include "common/pod_record.h"

namespace ashiato {

class PodFilter {
 public:
  // `namespaces`: exact names or shell globs ("*-system"); empty = all.
  PodFilter(std::vector<std::string> namespaces, std::string name_prefix)
      : namespaces_(std::move(namespaces)), name_prefix_(std::move(name_prefix)) {}

  // Returns true iff the pod passes every filter.
  bool Matches(const PodRecord& pod) const;

 private:
  std::vector<std::string> namespaces_;
  std::string name_prefix_;
};

}  // namespace ashiato
