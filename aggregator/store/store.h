// Store: the aggregator's durable state and history in one SQLite file
// (WAL mode) under --data-dir. Its schema is a public, versioned interface
// (docs/storage.md); Open migrates older files up and refuses newer ones.
//
//   auto store = Store::Open(options, registry);   // FailedPrecondition: newer schema
//   store->Commit(batch);                          // one transaction per report
//   store->History({.since = t}, ...);             // any time inside retention
//
// Faults of the disk (full, read-only, I/O error, corruption) make the store
// unhealthy: Commit returns Unavailable until Probe() succeeds again; reads
// keep working where SQLite can still read. Thread-safe: one writer
// connection behind a mutex, a small pool of reader connections (WAL lets
// them read while a write commits).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "aggregator/store/change_batch.h"
#include "aggregator/store/sqlite_stmt.h"
#include "aggregator/store/wal_checkpointer.h"
#include "common/status.h"

struct sqlite3;

namespace prometheus {
class Registry;
}

namespace ashiato {

// The schema version this build writes (docs/storage.md, "Schema").
inline constexpr int kStoreSchemaVersion = 5;

struct StoreOptions {
  // Directory of the store; created if missing. The file is <dir>/ashiato.db.
  std::string dir = "./ashiato-data";
  // synchronous=FULL (survives power loss) instead of NORMAL (survives a
  // process crash; the WAL's last transactions may be lost with the machine).
  bool sync_full = false;
  // History older than this is deleted; 0 keeps everything.
  std::chrono::milliseconds retention{std::chrono::hours(24 * 30)};
  // The oldest history is deleted while the store is larger; 0 = no limit.
  uint64_t retention_bytes = 0;
  // Rows deleted per retention transaction (ingest interleaves between them).
  int retention_chunk = 5000;
  // The writer's page cache, KiB. 16 MiB: larger made ingest slower, not
  // faster (every commit walks the whole cache's hash table in SQLite 3.40's
  // pcache1TruncateUnsafe; misses are reads from the OS page cache), and
  // cost ~920 B of RSS per pod at 150,000 pods (docs/benchmarks.md).
  int64_t cache_kib = 16 * 1024;
  // WAL pages that start a checkpoint, run beside commits on a thread of its
  // own (store/wal_checkpointer.h); `background_checkpoints` false runs it
  // in the commit that crosses the threshold, as SQLite does by itself.
  int wal_checkpoint_pages = 8192;
  bool background_checkpoints = true;
  // Test hook: a maximum database size in pages, to simulate a full disk.
  int64_t max_page_count = 0;
  // When set, ashiato_store_* metrics are registered here.
  prometheus::Registry* registry = nullptr;
};

// A page of rows and the token that continues after it ("" = last page).
template <typename T>
struct Page {
  std::vector<T> items;
  std::string next;
};

struct StoredEvent {
  int64_t id = 0;
  UnixMicros ts = 0;
  std::string line;  // Without the id.
  bool replayed = false;
  std::string event;          // CREATED, ..., IMAGE_ADDED, IMAGE_REMOVED.
  bool out_of_scope = false;  // Outside the live configuration's scope: not printed.
};

struct Interval {
  std::string uid, namespace_, name, node;
  std::string ip;                        // IP leases.
  std::string container, image, digest;  // Images.
  UnixMicros from = 0;
  std::optional<UnixMicros> to;  // Unset while open.
};

// Only these namespaces (a reader's access); null = any.
using NamespaceList = std::vector<std::string>;

struct EventFilter {
  std::optional<UnixMicros> since, until;   // ts in [since, until).
  std::string namespace_, name, uid, node;  // "" = any.
  const NamespaceList* namespaces = nullptr;
  std::vector<std::string> events;  // Only these events (CREATED, IMAGE_ADDED, ...); empty = any.
};

struct ImageUse {
  std::string image, digest;
  int64_t pods = 0, nodes = 0;
};

// A row of the deployment-record outbox.
struct OutboxEntry {
  int64_t id = 0;
  UnixMicros created = 0;
  std::string key;  // deployment_name.
  std::string body;
  int64_t attempts = 0;
  UnixMicros next_attempt = 0;
  std::string last_error;
};

// What the Node watch last saw of a node (aggregator/node_directory.h).
struct NodeInfoRow {
  std::string node;
  std::string info;  // JSON object: addresses, zone, region.
  bool deleted = false;
  UnixMicros updated = 0;
};

struct StoreSize {
  uint64_t bytes = 0;  // Pages in use (page_count - freelist) * page_size.
  uint64_t file_bytes = 0;
  std::optional<UnixMicros> oldest_event;
};

struct RetentionResult {
  uint64_t events_deleted = 0;
  uint64_t intervals_deleted = 0;
  uint64_t pods_deleted = 0;
  bool by_size = false;  // The size budget, not only the age, decided.
};

class Store {
 public:
  // Opens (creating and migrating) the store. A file written by a newer
  // schema is refused with FailedPrecondition. Any other failure (corrupt
  // file, unwritable directory) still returns a Store, unhealthy, that keeps
  // retrying in Probe(): the aggregator serves health and reads meanwhile.
  static Result<std::unique_ptr<Store>> Open(StoreOptions options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The id created with the store file, kept across restarts ("" until open).
  std::string instance() const;
  bool healthy() const { return healthy_.load(); }
  // Why the store is unhealthy ("" when healthy).
  std::string last_error() const;
  const std::string& path() const { return path_; }

  // Writes the batch in one transaction. Unavailable (store unhealthy, disk
  // full, read-only...) or Internal; on error nothing of the batch is kept.
  Status Commit(const ChangeBatch& batch);
  // When unhealthy: reopens if needed and tries a small write; healthy again
  // on success. Cheap when healthy.
  Status Probe();

  // Test hook: changes the size cap of StoreOptions::max_page_count on the
  // open file (0 = the file system's limit), as a disk filling or freeing.
  void SetMaxPageCountForTest(int64_t pages);

  // For rebuilding the in-memory cache: every live pod and the
  // `max_tombstones` most recently deleted, oldest first; every node.
  Status LoadPods(size_t max_tombstones, const std::function<void(PodRow&&)>& fn);
  Status LoadNodes(const std::function<void(NodeRow&&)>& fn);

  // --- Node addresses and topology (kept for deleted nodes too).
  Status PutNodeInfo(const std::vector<NodeInfoRow>& rows);
  Status LoadNodeInfo(const std::function<void(NodeInfoRow&&)>& fn);

  // The unified log's source: events with id > after, in id order.
  Result<std::vector<StoredEvent>> EventsAfter(int64_t after, size_t limit);
  // The id of the last event written to the log (persisted).
  Result<int64_t> LogCursor();
  Status SetLogCursor(int64_t id);
  // A value ChangeBatch::meta wrote ("" when never written).
  Result<std::string> Meta(const std::string& key);
  // The highest event id (0 when none).
  Result<int64_t> LastEventId();

  // --- Deployment-record outbox (rows are added by Commit).
  // Up to `limit` rows due at `now` (next_attempt <= now) that are the
  // oldest of their key, in id order; keys in `busy` are skipped.
  Result<std::vector<OutboxEntry>> DueOutbox(UnixMicros now, size_t limit,
                                             const std::vector<std::string>& busy = {});
  // Delivered (or refused for good): the row is deleted.
  Status DeleteOutbox(int64_t id);
  // Tried and failed: the next attempt is not before `next_attempt`.
  Status RescheduleOutbox(int64_t id, int64_t attempts, UnixMicros next_attempt,
                          const std::string& error);
  // Rows in the outbox, and the earliest next attempt (0 when empty).
  Result<std::pair<int64_t, UnixMicros>> OutboxDepth();

  // --- Queries (any time inside retention; `cont` is a token from a page).
  // Events in (ts, id) order.
  Result<Page<StoredEvent>> Events(const EventFilter& filter, const std::string& cont,
                                   size_t limit);
  // Who held `ip` at `at` (now: open leases), newest first.
  Result<Page<Interval>> IpLeases(const std::string& ip, std::optional<UnixMicros> at,
                                  const std::string& cont, size_t limit,
                                  const NamespaceList* namespaces = nullptr);
  // Placements of a pod name, or of a node; newest first.
  Result<Page<Interval>> Placements(const std::string& ns, const std::string& name,
                                    const std::string& node, std::optional<UnixMicros> at,
                                    const std::string& cont, size_t limit,
                                    const NamespaceList* namespaces = nullptr);
  // Placements overlapping [from, to): for the hourly ConfigMaps' backfill.
  Status PlacementsOverlapping(UnixMicros from, UnixMicros to,
                               const std::function<void(Interval&&)>& fn);
  // UIDs that ever had this name, oldest first.
  Result<std::vector<std::string>> UidsOfName(const std::string& ns, const std::string& name);
  // Images in use at `at`, with distinct pods and nodes.
  Result<std::vector<ImageUse>> ImagesAt(UnixMicros at, const NamespaceList* namespaces = nullptr);
  // Intervals of one image (by reference or "sha256:..." digest), newest
  // first; with `since`/`until`, only those overlapping [since, until).
  Result<Page<Interval>> ImageUsage(const std::string& image_or_digest, const std::string& cont,
                                    size_t limit, const NamespaceList* namespaces = nullptr,
                                    std::optional<UnixMicros> since = std::nullopt,
                                    std::optional<UnixMicros> until = std::nullopt);
  // Every namespace with a placement in the store (current pods and the
  // history inside retention), sorted.
  Result<std::vector<std::string>> Namespaces();

  // Deletes history older than the retention and, while over
  // retention_bytes, the oldest history; in chunks of retention_chunk rows
  // so ingest is never stalled for long. Events not yet written to the log
  // (id > log cursor) are kept.
  Result<RetentionResult> EnforceRetention(UnixMicros now);
  Result<StoreSize> Size();
  // Checkpoints run so far by the background thread and by the writer.
  uint64_t background_checkpoints() const { return checkpointer_->background_checkpoints(); }
  uint64_t writer_checkpoints() const { return checkpointer_->writer_checkpoints(); }

 private:
  class Conn;
  explicit Store(StoreOptions options);
  Status OpenLocked();
  Status Migrate(sqlite3* db);
  void MarkUnhealthy(const Status& st);
  // Runs fn on a reader connection.
  template <typename T>
  Result<T> Read(const std::function<Result<T>(sqlite3*)>& fn);
  Result<uint64_t> DeleteChunk(const char* sql, int64_t arg1, int64_t arg2);

  struct Metrics;
  StoreOptions options_;
  std::string path_;
  std::unique_ptr<Metrics> metrics_;
  std::atomic<bool> healthy_{false};
  std::unique_ptr<WalCheckpointer> checkpointer_;  // Hooked into each writer connection.

  // The writer's statement for `sql` (a string literal), prepared once per
  // connection and reset for reuse: preparing costs more than running the
  // small statements of a commit. write_mu_ held.
  Stmt& WriterStatement(const char* sql);
  // Finalizes the cached statements, then closes the writer. write_mu_ held.
  void CloseWriterLocked();

  mutable std::mutex write_mu_;  // The writer connection and the fields below.
  sqlite3* writer_ = nullptr;
  std::map<const char*, std::unique_ptr<Stmt>> writer_statements_;
  std::string instance_;
  std::string last_error_;

  std::mutex read_mu_;             // Taken after write_mu_ when both are needed, never before.
  std::vector<sqlite3*> readers_;  // Idle reader connections.
};

}  // namespace ashiato
