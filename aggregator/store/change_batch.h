// ChangeBatch: everything one applied report changes, committed to the
// Store in one transaction (aggregator/store/store.h). Built by ClusterState
// from its in-memory dedup; the Store only writes it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ashiato {

// Microseconds since the Unix epoch: the unit of every time in the store.
using UnixMicros = int64_t;

// One unified log line, in the order it happened.
struct EventRow {
  std::string event;  // SYNC, CREATED, UPDATED, DELETED.
  UnixMicros ts = 0;  // When the change happened (the line's `timestamp`).
  UnixMicros aggregated = 0;
  std::string uid, namespace_, name, node, observed_by;
  std::string line;       // The unified log line without its `id` (JSON object).
  bool replayed = false;  // Printed by an earlier aggregator: store, don't print.
  // The pod was outside the live configuration's scope (common/live_config.h):
  // kept for history queries, not printed.
  bool out_of_scope = false;
};

// The current (or last, if deleted) state of a pod, for dedup after a restart.
struct PodRow {
  std::string uid, namespace_, name, node, observed_by, epoch, resource_version;
  uint64_t seq = 0;
  bool deleted = false;
  bool deleted_by_snapshot = false;
  UnixMicros last_change = 0;
  std::string record;  // PodRecordToLogJson of the state.
};

// Dedup position of a node's agent.
struct NodeRow {
  std::string node, epoch;
  uint64_t last_seq = 0;
  std::vector<std::string> retired_epochs;
  UnixMicros last_snapshot = 0;
  uint64_t reports = 0;
};

// Opens or closes an interval: a placement (pod on a node), an IP lease or
// an image in use. Closing finds the open interval of the same key.
struct IntervalOp {
  enum class Kind { kPlacement, kIpLease, kImage };
  enum class Action { kOpen, kClose, kSetDigest };
  Kind kind = Kind::kPlacement;
  Action action = Action::kOpen;
  std::string uid, namespace_, name, node;
  std::string ip;                        // kIpLease.
  std::string container, image, digest;  // kImage.
  UnixMicros from = 0;                   // kOpen.
  UnixMicros to = 0;                     // kClose; 0 with kOpen = still open.
};

// A record for an external sink (the deployment-record outbox,
// aggregator/deploy/): committed with the change that caused it, deleted
// once delivered.
struct OutboxRow {
  std::string key;   // Rows of one key are delivered in id order (the deployment name).
  std::string body;  // The request body (JSON).
  UnixMicros created = 0;
};

struct ChangeBatch {
  std::vector<EventRow> events;
  std::vector<IntervalOp> intervals;        // Applied in order, after the events.
  std::vector<PodRow> pods;                 // Upserted.
  std::vector<NodeRow> nodes;               // Upserted.
  std::vector<OutboxRow> outbox;            // Appended to deployment_outbox.
  std::map<std::string, std::string> meta;  // Upserted into the meta table.
  bool empty() const {
    return events.empty() && intervals.empty() && pods.empty() && nodes.empty() && outbox.empty() &&
           meta.empty();
  }
};

}  // namespace ashiato
