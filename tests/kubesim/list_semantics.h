// How the API server answers a list, from its resourceVersion,
// resourceVersionMatch, limit and continue parameters: the semantics of the
// Kubernetes API docs ("Resource versions", "Semantics for get and list") and
// whether kube-apiserver's watch cache answers it or it reads etcd (the
// cacher's delegation rule). kubesim counts lists by both, so benchmarks can
// tell an etcd scan from a cache hit.
#pragma once

#include <cstdint>
#include <string>

#include "tests/kubesim/resources.h"

namespace kubesim {

enum class ListSemantics {
  kMostRecent,    // resourceVersion unset: a consistent (quorum) read.
  kAny,           // "0": whatever the cache holds.
  kNotOlderThan,  // An RV without limit (or resourceVersionMatch=NotOlderThan).
  kExact,         // An RV with limit (legacy), or resourceVersionMatch=Exact.
  kContinue,      // A continue token: the rest of a paginated list, at its RV.
};

// "most_recent", "any", "not_older_than", "exact", "continue".
const char* ListSemanticsName(ListSemantics s);

struct ListPlan {
  ListSemantics semantics = ListSemantics::kMostRecent;
  // The requested resourceVersion for kNotOlderThan and kExact.
  uint64_t rv = 0;
  // True iff the real server reads etcd for it (else its watch cache answers).
  bool from_etcd = true;
};

struct ListParams {
  std::string resource_version;  // The query parameter, "" = unset.
  std::string match;             // resourceVersionMatch, "" = unset.
  bool limit = false;            // A positive limit is set.
  bool continue_token = false;   // A continue token is set.
  // Kubernetes >= 1.31 (ConsistentListFromCache): a most-recent list without
  // limit is answered from the cache after it caught up with etcd.
  bool consistent_reads_from_cache = false;
};

// The plan for a list, or the 400/422 the real server answers for a
// combination it refuses.
ApiOr<ListPlan> PlanList(const ListParams& params);

}  // namespace kubesim
