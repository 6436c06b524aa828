// DeploymentCensus: which digests each deployment name runs, counted over
// the live pods, so a deployment record is queued once when a deployment
// name gets its first Running pod of a digest (`deployed`) and once when
// the last pod of that deployment name is gone (`decommissioned`, with the
// digest of that last pod), as deployment-tracker reports them.
//
// The deployment name is DN_TEMPLATE over the pod's namespace, its
// deployment (the agent follows Pod -> ReplicaSet -> Deployment; any other
// owner: the owner's name; no owner: the pod's name) and the container's
// name. A container counts while its pod is Running and its status names
// the digest it runs: a pod without a digest yet is recorded once the digest
// is known, not before.
//
// Records are appended to the report's ChangeBatch (the durable outbox),
// committed with the change that caused them. A replayed change (re-sent to
// a new, wiped store) is counted but queues nothing: an earlier aggregator
// already queued it, and whatever it had not delivered when its volume was
// lost is repaired by the periodic reconciliation.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "aggregator/deploy/config.h"
#include "aggregator/deploy/record.h"
#include "aggregator/pod_census.h"

namespace ashiato {

class DeploymentCensus : public PodCensus {
 public:
  explicit DeploymentCensus(DeployConfig config);

  // The deployment (not the deployment *name*): the Deployment, the other
  // owner, or the pod itself.
  static std::string DeploymentOf(const PodRecord& pod);

  void Clear() override;
  void Restore(const PodRecord& pod) override;
  void Apply(const PodRecord* before, const PodRecord* after, const CensusContext& ctx,
             ChangeBatch* batch) override;

  // Every (deployment name, digest) in use now, as `deployed` records
  // (for the reconciliation). Thread-safe.
  std::vector<DeploymentRecord> InUse() const;
  // Running containers of `deployment_name` with `digest` (0 if none).
  size_t pods(const std::string& deployment_name, const std::string& digest) const;

 private:
  struct Image {
    std::string name, version;
  };
  using Key = std::pair<std::string, std::string>;  // (deployment name, digest).
  std::map<Key, Image> ContributionsOf(const PodRecord& pod) const;
  DeploymentRecord Record(const Key& key, const Image& image, const char* status) const;
  void Queue(const DeploymentRecord& r, const CensusContext& ctx, ChangeBatch* batch) const;

  DeployConfig config_;
  mutable std::mutex mu_;  // Guards the maps (InUse reads from another thread).
  struct Usage {
    size_t count = 0;
    Image image;
  };
  std::map<std::string, std::map<std::string, Usage>> usage_;  // name -> digest -> usage.
};

}  // namespace ashiato
