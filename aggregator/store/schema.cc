#include "aggregator/store/schema.h"

namespace ashiato {

// Times are microseconds since the Unix epoch (UTC). An interval whose
// to_us is NULL is still open.
const std::vector<const char*> kStoreMigrations = {
    // 0 -> 1: the first schema.
    R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

-- Every line of the unified log; id is the line's "id".
CREATE TABLE events(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts_us INTEGER NOT NULL,
  aggregated_us INTEGER NOT NULL,
  event TEXT NOT NULL,
  uid TEXT NOT NULL,
  namespace TEXT NOT NULL,
  name TEXT NOT NULL,
  node TEXT NOT NULL,
  observed_by TEXT NOT NULL,
  -- 1: re-sent by an agent to a store that had lost it; an earlier
  -- aggregator printed the line, so the log writer does not print it again.
  replayed INTEGER NOT NULL DEFAULT 0,
  line TEXT NOT NULL);
CREATE INDEX events_by_ts ON events(ts_us);
CREATE INDEX events_by_name ON events(namespace, name, ts_us);
CREATE INDEX events_by_uid ON events(uid, ts_us);
CREATE INDEX events_by_node ON events(node, ts_us);

-- The last known state of each pod (dedup across restarts).
CREATE TABLE pods(
  uid TEXT PRIMARY KEY,
  namespace TEXT NOT NULL,
  name TEXT NOT NULL,
  node TEXT NOT NULL,
  observed_by TEXT NOT NULL,
  epoch TEXT NOT NULL,
  seq INTEGER NOT NULL,
  resource_version TEXT NOT NULL,
  deleted INTEGER NOT NULL,
  deleted_by_snapshot INTEGER NOT NULL,
  last_change_us INTEGER NOT NULL,
  record TEXT NOT NULL);
CREATE INDEX pods_by_deleted ON pods(deleted, last_change_us);

-- Each agent's dedup position.
CREATE TABLE nodes(
  node TEXT PRIMARY KEY,
  epoch TEXT NOT NULL,
  last_seq INTEGER NOT NULL,
  retired_epochs TEXT NOT NULL,
  last_snapshot_us INTEGER NOT NULL,
  reports INTEGER NOT NULL);

-- A pod on a node, from when it was first seen until it was deleted.
CREATE TABLE placements(
  id INTEGER PRIMARY KEY,
  uid TEXT NOT NULL,
  namespace TEXT NOT NULL,
  name TEXT NOT NULL,
  node TEXT NOT NULL,
  from_us INTEGER NOT NULL,
  to_us INTEGER);
CREATE INDEX placements_open ON placements(uid) WHERE to_us IS NULL;
CREATE INDEX placements_by_name ON placements(namespace, name, from_us);
CREATE INDEX placements_by_node ON placements(node, from_us);
CREATE INDEX placements_by_from ON placements(from_us);
CREATE INDEX placements_by_to ON placements(to_us);

-- A pod holding an IP.
CREATE TABLE ip_leases(
  id INTEGER PRIMARY KEY,
  ip TEXT NOT NULL,
  uid TEXT NOT NULL,
  namespace TEXT NOT NULL,
  name TEXT NOT NULL,
  node TEXT NOT NULL,
  from_us INTEGER NOT NULL,
  to_us INTEGER);
CREATE INDEX ip_leases_by_ip ON ip_leases(ip, from_us);
CREATE INDEX ip_leases_open ON ip_leases(uid) WHERE to_us IS NULL;
CREATE INDEX ip_leases_by_to ON ip_leases(to_us);

-- A container of a pod running an image (digest filled in once known).
CREATE TABLE image_usage(
  id INTEGER PRIMARY KEY,
  image TEXT NOT NULL,
  digest TEXT NOT NULL,
  container TEXT NOT NULL,
  uid TEXT NOT NULL,
  namespace TEXT NOT NULL,
  name TEXT NOT NULL,
  node TEXT NOT NULL,
  from_us INTEGER NOT NULL,
  to_us INTEGER);
CREATE INDEX image_usage_by_image ON image_usage(image, from_us);
CREATE INDEX image_usage_by_digest ON image_usage(digest, from_us);
CREATE INDEX image_usage_open ON image_usage(uid) WHERE to_us IS NULL;
CREATE INDEX image_usage_by_from ON image_usage(from_us);
CREATE INDEX image_usage_by_to ON image_usage(to_us);
)sql",
    // 1 -> 2: the deployment-record outbox (docs/deployment-records.md).
    R"sql(
-- Deployment records not yet delivered, committed with the pod change that
-- caused them; deleted once the artifact-metadata service took them (or
-- refused them for good). Rows of one deployment_name go out in id order.
CREATE TABLE deployment_outbox(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_us INTEGER NOT NULL,
  deployment_name TEXT NOT NULL,
  body TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_us INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '');
CREATE INDEX deployment_outbox_by_name ON deployment_outbox(deployment_name, id);
CREATE INDEX deployment_outbox_by_due ON deployment_outbox(next_attempt_us);
)sql",
    // 2 -> 3: what the aggregator's Node watch last saw of each node
    // (aggregator/node_directory.h). A deleted node keeps its row, so
    // history and answers after a restart still name its addresses.
    R"sql(
CREATE TABLE node_info(
  node TEXT PRIMARY KEY,
  -- {"addresses":[{"type":"InternalIP","address":"10.0.0.1"},...],"zone":..,"region":..}
  info TEXT NOT NULL,
  deleted INTEGER NOT NULL,
  updated_us INTEGER NOT NULL);
)sql",
    // 3 -> 4: lines of pods outside the live configuration's scope
    // (docs/live-config.md): stored for history queries, never printed.
    R"sql(
ALTER TABLE events ADD COLUMN out_of_scope INTEGER NOT NULL DEFAULT 0;
)sql",
    // 4 -> 5: the indexes that only retention reads hold only what retention
    // deletes (tombstones, ended intervals), so a live pod's change no longer
    // moves an entry in each of them: ~12 % fewer bytes written per change
    // (docs/benchmarks.md). IF [NOT] EXISTS: a file some test or tool already
    // partly converted still migrates.
    R"sql(
DROP INDEX IF EXISTS pods_by_deleted;
CREATE INDEX IF NOT EXISTS pods_tombstones ON pods(last_change_us) WHERE deleted = 1;
DROP INDEX IF EXISTS placements_by_to;
CREATE INDEX IF NOT EXISTS placements_ended ON placements(to_us) WHERE to_us IS NOT NULL;
DROP INDEX IF EXISTS ip_leases_by_to;
CREATE INDEX IF NOT EXISTS ip_leases_ended ON ip_leases(to_us) WHERE to_us IS NOT NULL;
DROP INDEX IF EXISTS image_usage_by_to;
CREATE INDEX IF NOT EXISTS image_usage_ended ON image_usage(to_us) WHERE to_us IS NOT NULL;
)sql",
};

const std::vector<const char*> kStoreDowngrades = {
    // 1 -> 0, 2 -> 1, 3 -> 2, 4 -> 3: not offered (they drop data).
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    // 5 -> 4: the indexes of version 4 back, for rolling back to an
    // aggregator that refuses version 5. Nothing is lost.
    R"sql(
DROP INDEX IF EXISTS pods_tombstones;
CREATE INDEX IF NOT EXISTS pods_by_deleted ON pods(deleted, last_change_us);
DROP INDEX IF EXISTS placements_ended;
CREATE INDEX IF NOT EXISTS placements_by_to ON placements(to_us);
DROP INDEX IF EXISTS ip_leases_ended;
CREATE INDEX IF NOT EXISTS ip_leases_by_to ON ip_leases(to_us);
DROP INDEX IF EXISTS image_usage_ended;
CREATE INDEX IF NOT EXISTS image_usage_by_to ON image_usage(to_us);
)sql",
};

const RetentionSql kRetentionSql = {
    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts_us < ?1 AND id <= ?2 "
    "ORDER BY ts_us LIMIT ?3)",
    {"DELETE FROM placements WHERE id IN (SELECT id FROM placements WHERE to_us < ?1 "
     "AND ?2 = ?2 LIMIT ?3)",
     "DELETE FROM ip_leases WHERE id IN (SELECT id FROM ip_leases WHERE to_us < ?1 "
     "AND ?2 = ?2 LIMIT ?3)",
     "DELETE FROM image_usage WHERE id IN (SELECT id FROM image_usage WHERE to_us < ?1 "
     "AND ?2 = ?2 LIMIT ?3)"},
    "DELETE FROM pods WHERE uid IN (SELECT uid FROM pods WHERE deleted = 1 AND "
    "last_change_us < ?1 AND ?2 = ?2 LIMIT ?3)",
};

}  // namespace ashiato
