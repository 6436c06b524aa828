// The starting cluster and the pods churn creates: realistic objects
// (owners, labels, images with digests, IPs, conditions) made
// deterministically from a seed.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "tests/kubesim/store.h"

namespace kubesim {

class Fixtures {
 public:
  Fixtures(Store* store, uint64_t seed) : store_(store), rng_(seed) {}

  // Namespaces (default, kube-system, team-a, ashiato) with a `default`
  // ServiceAccount each, nodes node-1..node-N, and pods_per_node pods on each.
  void SeedCluster(int nodes, int pods_per_node);

  // A new pod from one of the workload templates, bound to `node` and
  // Pending (as after scheduling). Name is generateName-style.
  nlohmann::json NewPod(const std::string& node);
  // Sets the status a kubelet reports for a running pod (IP from the node's
  // pod CIDR, Ready conditions, container statuses with image digests).
  void MarkRunning(nlohmann::json& pod);

  int node_count() const { return nodes_; }
  // For a cluster loaded from a state file.
  void set_node_count(int n) { nodes_ = n; }
  std::string RandomNode();
  std::mt19937_64& rng() { return rng_; }

 private:
  nlohmann::json MakeNode(int i);
  nlohmann::json MakePod(int tmpl, const std::string& node);

  Store* store_;
  std::mt19937_64 rng_;
  int nodes_ = 0;
  uint64_t statefulset_ordinal_ = 0;
  std::unordered_map<std::string, uint32_t> next_ip_;  // node -> last host octet pair used
};

// "sha256:<64 hex>" of `text`, for deterministic image digests.
std::string Sha256Hex(const std::string& text);
// Node index from "node-12" (0 if not of that form).
int NodeIndex(const std::string& node);
// "10.x.y.0/24" pod CIDR base and the node's InternalIP.
std::string NodePodPrefix(int index);
std::string NodeInternalIp(int index);

}  // namespace kubesim
