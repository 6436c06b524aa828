// The --cluster-name of the agent and the aggregator (default: the CLUSTER
// environment variable, which deployment-tracker users already set): the
// "cluster" field of every log line and API answer, and a ConfigMap label, so
// that many clusters can share one log backend. Empty means single-cluster
// use: the field and label are omitted.
#pragma once

#include <string>

#include "common/status.h"

namespace ashiato {

// OK for "" and for any name of at most 253 bytes without control
// characters; InvalidArgument naming the rule otherwise.
Status ValidateClusterName(const std::string& name);

// True iff `name` is a valid Kubernetes label value (at most 63 characters
// of [A-Za-z0-9._-], beginning and ending with a letter or digit), so it can
// be the ConfigMaps' ashiato.io/cluster label.
bool IsLabelValue(const std::string& name);

// The ConfigMaps' ashiato.io/cluster label for `name`: `name` itself when it
// is a label value, else "" (no label) with a warning saying so. The agent's
// standalone writer and the aggregator's use it alike (same bytes).
std::string ClusterLabel(const std::string& name);

}  // namespace ashiato
