// PodCensus: a count kept over the live pods (which images run, which
// deployments run which digests) whose changes must be committed in the same
// transaction as the pod change that caused them, so that a crash can
// neither lose nor repeat them. ClusterState calls Apply for every logged
// change while it builds the report's ChangeBatch, and rebuilds every census
// from the live pods whenever its cache is (re)loaded from the store: after
// a restart the census is what it was, and nothing is emitted twice.
#pragma once

#include <string>

#include "aggregator/store/change_batch.h"
#include "common/pod_record.h"

namespace ashiato {

struct CensusContext {
  UnixMicros when_us = 0;   // When the change happened.
  UnixMicros now_us = 0;    // When the aggregator applied it.
  std::string when_text;    // `when` as RFC 3339 (the log line's timestamp).
  std::string now_text;     // When the aggregator applied it (aggregated_at).
  std::string observed_by;  // The node whose agent reported it.
  bool replayed = false;    // Re-sent to a new store: an earlier aggregator acted on it.
};

class PodCensus {
 public:
  virtual ~PodCensus() = default;
  // Forget everything (before the live pods are restored).
  virtual void Clear() = 0;
  // A live pod found in the store: counted, nothing emitted.
  virtual void Restore(const PodRecord& pod) = 0;
  // A pod changed from `before` (its last live state; null if it was not
  // live) to `after` (null once it is gone). Appends what the change causes
  // to `batch`. Called under the state's ingest lock: must not block.
  virtual void Apply(const PodRecord* before, const PodRecord* after, const CensusContext& ctx,
                     ChangeBatch* batch) = 0;
};

}  // namespace ashiato
