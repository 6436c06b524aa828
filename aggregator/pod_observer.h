// PodObserver: told about every change the aggregator applies, after
// deduplication, so each real change reaches it exactly once. The hourly
// ConfigMap writer (aggregator/cm_writer.h) is attached through this.
#pragma once

#include "common/pod_record.h"
#include "common/time_util.h"

namespace ashiato {

class PodObserver {
 public:
  virtual ~PodObserver() = default;
  // The pod exists (created, changed, or re-observed in a snapshot) as
  // `pod` at `when`. Also called once per live pod after a restart restored
  // the state, so an observer that buckets by time sees still-running pods.
  // Called with the aggregator's state lock held: must not block.
  virtual void OnPodPresent(const PodRecord& pod, SystemTime when) = 0;
  // The pod is gone (deleted, or missing from its node's snapshot) at `when`.
  virtual void OnPodGone(const PodRecord& pod, SystemTime when) = 0;
};

}  // namespace ashiato
