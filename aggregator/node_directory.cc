#include "aggregator/node_directory.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <set>

#include "common/json_fields.h"

namespace ashiato {
namespace {

using nlohmann::json;

constexpr auto Str = JsonStringField;
constexpr auto Obj = JsonField;

// Keys in byte order, as nlohmann dumps an object: the same text in log
// lines and API answers.
json AddressesJson(const std::vector<NodeAddress>& addresses) {
  json a = json::array();
  for (const auto& x : addresses) a.push_back({{"address", x.address}, {"type", x.type}});
  return a;
}

json InfoJson(const NodeInfo& n) {
  return {{"addresses", AddressesJson(n.addresses)}, {"zone", n.zone}, {"region", n.region}};
}

}  // namespace

NodeInfo NodeInfoFromNodeJson(const json& node) {
  NodeInfo n;
  const json& meta = Obj(node, "metadata");
  n.name = Str(meta, "name");
  const json& labels = Obj(meta, "labels");
  n.zone = Str(labels, "topology.kubernetes.io/zone");
  n.region = Str(labels, "topology.kubernetes.io/region");
  const json& addresses = Obj(Obj(node, "status"), "addresses");
  if (addresses.is_array()) {
    for (const auto& a : addresses) {
      NodeAddress x{Str(a, "type"), Str(a, "address")};
      if (!x.address.empty()) n.addresses.push_back(std::move(x));
    }
  }
  return n;
}

Status NodeDirectory::Load() {
  if (!store_) return Status::Ok();
  std::map<std::string, NodeInfo> loaded;
  Status st = store_->LoadNodeInfo([&](NodeInfoRow&& row) {
    json j = json::parse(row.info, nullptr, false);
    NodeInfo n;
    n.name = row.node;
    n.deleted = row.deleted;
    n.zone = Str(j, "zone");
    n.region = Str(j, "region");
    const json& a = Obj(j, "addresses");
    if (a.is_array()) {
      for (const auto& x : a) n.addresses.push_back({Str(x, "type"), Str(x, "address")});
    }
    loaded[row.node] = std::move(n);
  });
  if (!st.ok()) return st;
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [name, n] : loaded) nodes_.try_emplace(name, std::move(n));
  return Status::Ok();
}

void NodeDirectory::Replace(const std::vector<NodeInfo>& nodes) {
  std::vector<NodeInfo> changed;
  {
    std::lock_guard<std::mutex> l(mu_);
    std::set<std::string> present;
    for (const NodeInfo& n : nodes) {
      if (n.name.empty()) continue;
      present.insert(n.name);
      auto [it, inserted] = nodes_.try_emplace(n.name, n);
      if (inserted || !(it->second == n)) {
        it->second = n;
        changed.push_back(n);
      }
    }
    for (auto& [name, n] : nodes_) {
      if (!present.count(name) && !n.deleted) {
        n.deleted = true;
        changed.push_back(n);
      }
    }
  }
  Persist(changed);
}

void NodeDirectory::Upsert(const NodeInfo& node) {
  if (node.name.empty()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto [it, inserted] = nodes_.try_emplace(node.name, node);
    if (!inserted && it->second == node) return;
    it->second = node;
  }
  Persist({node});
}

void NodeDirectory::MarkDeleted(const std::string& name) {
  NodeInfo n;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = nodes_.find(name);
    if (it == nodes_.end() || it->second.deleted) return;
    it->second.deleted = true;
    n = it->second;
  }
  Persist({n});
}

void NodeDirectory::Persist(const std::vector<NodeInfo>& changed) {
  if (!store_ || changed.empty()) return;
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::vector<NodeInfoRow> rows;
  rows.reserve(changed.size());
  for (const NodeInfo& n : changed) rows.push_back({n.name, InfoJson(n).dump(), n.deleted, now});
  Status st = store_->PutNodeInfo(rows);
  if (!st.ok()) {
    spdlog::warn("node addresses: {} nodes not persisted: {}", rows.size(), st.ToString());
  }
}

std::optional<NodeInfo> NodeDirectory::Get(const std::string& name) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return std::nullopt;
  return it->second;
}

size_t NodeDirectory::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return nodes_.size();
}

void NodeDirectory::AddTo(const std::string& node, json* j) const {
  auto n = Get(node);
  if (!n) return;
  (*j)["node_addresses"] = AddressesJson(n->addresses);
  if (!n->zone.empty()) (*j)["node_zone"] = n->zone;
  if (!n->region.empty()) (*j)["node_region"] = n->region;
}

NodeDirectory::LogText NodeDirectory::LogFields(const std::string& node) const {
  LogText t;
  auto n = Get(node);
  if (!n) return t;
  t.addresses = AddressesJson(n->addresses).dump(-1, ' ', false, json::error_handler_t::replace);
  t.zone = n->zone;
  t.region = n->region;
  return t;
}

}  // namespace ashiato
