#include "aggregator/deploy/census.h"

#include "aggregator/image_census.h"

namespace ashiato {

DeploymentCensus::DeploymentCensus(DeployConfig config) : config_(std::move(config)) {}

std::string DeploymentCensus::DeploymentOf(const PodRecord& pod) {
  if (!pod.owner_name.empty()) return pod.owner_name;
  return pod.name;
}

std::map<DeploymentCensus::Key, DeploymentCensus::Image> DeploymentCensus::ContributionsOf(
    const PodRecord& pod) const {
  std::map<Key, Image> out;
  if (pod.phase != "Running") return out;
  std::string deployment = DeploymentOf(pod);
  for (const auto& c : pod.containers) {
    std::string digest = ImageCensus::DigestOf(c.image_id);
    if (digest.empty() || c.image.empty()) continue;
    auto [name, version] = SplitImageReference(c.image);
    std::string dn = RenderDeploymentName(config_.dn_template, pod.namespace_, deployment, c.name);
    out.emplace(Key{dn, digest}, Image{name, version});
  }
  return out;
}

void DeploymentCensus::Clear() {
  std::lock_guard<std::mutex> l(mu_);
  usage_.clear();
}

void DeploymentCensus::Restore(const PodRecord& pod) {
  auto mine = ContributionsOf(pod);
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [k, img] : mine) {
    Usage& u = usage_[k.first][k.second];
    ++u.count;
    u.image = img;
  }
}

size_t DeploymentCensus::pods(const std::string& deployment_name, const std::string& digest) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = usage_.find(deployment_name);
  if (it == usage_.end()) return 0;
  auto d = it->second.find(digest);
  return d == it->second.end() ? 0 : d->second.count;
}

DeploymentRecord DeploymentCensus::Record(const Key& key, const Image& image,
                                          const char* status) const {
  DeploymentRecord r;
  r.name = image.name;
  r.version = image.version;
  r.digest = key.second;
  r.status = status;
  r.logical_environment = config_.logical_environment;
  r.physical_environment = config_.physical_environment;
  r.cluster = config_.cluster;
  r.deployment_name = key.first;
  return r;
}

void DeploymentCensus::Queue(const DeploymentRecord& r, const CensusContext& ctx,
                             ChangeBatch* batch) const {
  if (ctx.replayed) return;  // An earlier aggregator queued it (see the header).
  OutboxRow row;
  row.key = r.deployment_name;
  row.body = r.ToJson().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  row.created = ctx.now_us;
  batch->outbox.push_back(std::move(row));
}

void DeploymentCensus::Apply(const PodRecord* before, const PodRecord* after,
                             const CensusContext& ctx, ChangeBatch* batch) {
  auto was = before ? ContributionsOf(*before) : std::map<Key, Image>{};
  auto now = after ? ContributionsOf(*after) : std::map<Key, Image>{};
  std::vector<DeploymentRecord> out;
  {
    std::lock_guard<std::mutex> l(mu_);
    // Additions first: a pod whose container changes digest in place
    // deploys the new digest without decommissioning the name in between.
    for (const auto& [k, img] : now) {
      if (was.count(k)) continue;
      Usage& u = usage_[k.first][k.second];
      if (u.count++ == 0) out.push_back(Record(k, img, "deployed"));
      u.image = img;
    }
    for (const auto& [k, img] : was) {
      if (now.count(k)) continue;
      auto n = usage_.find(k.first);
      if (n == usage_.end()) continue;  // Not counted: nothing to undo.
      auto d = n->second.find(k.second);
      if (d == n->second.end()) continue;
      if (--d->second.count > 0) continue;
      n->second.erase(d);
      if (n->second.empty()) {
        usage_.erase(n);
        out.push_back(Record(k, img, "decommissioned"));
      }
    }
  }
  for (const auto& r : out) Queue(r, ctx, batch);
}

std::vector<DeploymentRecord> DeploymentCensus::InUse() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<DeploymentRecord> out;
  for (const auto& [dn, digests] : usage_) {
    for (const auto& [digest, u] : digests) {
      out.push_back(Record({dn, digest}, u.image, "deployed"));
    }
  }
  return out;
}

}  // namespace ashiato
