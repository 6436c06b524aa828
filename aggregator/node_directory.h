// NodeDirectory: each node's addresses (status.addresses, every type) and
// topology labels (topology.kubernetes.io/zone and /region) as the
// aggregator's Node watch (aggregator/node_watch.h) last saw them. Unified
// log lines, /v1/pods and /v1/ips answers carry them.
//
// Durable: every change is written to the store's node_info table, and a
// deleted node keeps its last addresses (marked deleted), so history and
// answers after a restart still have them. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "aggregator/store/store.h"

namespace ashiato {

struct NodeAddress {
  std::string type;  // "InternalIP", "ExternalIP", "Hostname", "InternalDNS", ...
  std::string address;
  bool operator==(const NodeAddress&) const = default;
};

struct NodeInfo {
  std::string name;
  std::vector<NodeAddress> addresses;  // In status.addresses order.
  std::string zone;                    // topology.kubernetes.io/zone, "" when unlabelled.
  std::string region;                  // topology.kubernetes.io/region.
  bool deleted = false;                // The node is gone; these are its last values.
  bool operator==(const NodeInfo&) const = default;
};

// From a v1 Node object; fields that are missing or of another type stay empty.
NodeInfo NodeInfoFromNodeJson(const nlohmann::json& node);

class NodeDirectory {
 public:
  // `store` may be null (nothing persisted).
  explicit NodeDirectory(Store* store = nullptr) : store_(store) {}

  // Loads what an earlier process saw.
  Status Load();
  // A complete list of the cluster's nodes: known nodes missing from it are
  // marked deleted (their addresses kept).
  void Replace(const std::vector<NodeInfo>& nodes);
  // A node added or modified.
  void Upsert(const NodeInfo& node);
  // A node deleted: kept, marked deleted.
  void MarkDeleted(const std::string& name);

  std::optional<NodeInfo> Get(const std::string& name) const;
  size_t size() const;

  // Adds "node_addresses" (and "node_zone", "node_region" when labelled)
  // to `j` for `node`; nothing when the node is unknown.
  void AddTo(const std::string& node, nlohmann::json* j) const;

  // The same fields as log fields: raw JSON of the addresses ("" when the
  // node is unknown), and the zone and region ("" when unlabelled).
  struct LogText {
    std::string addresses;
    std::string zone;
    std::string region;
  };
  LogText LogFields(const std::string& node) const;

 private:
  // Writes the changed entries to the store (logged, not fatal, on error).
  void Persist(const std::vector<NodeInfo>& changed);

  Store* store_;
  mutable std::mutex mu_;
  std::map<std::string, NodeInfo> nodes_;
};

}  // namespace ashiato
