#include "aggregator/store/store.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "aggregator/store/schema.h"
#include "aggregator/store/sqlite_stmt.h"

namespace ashiato {
namespace {

// A namespace list as the JSON array json_each() reads. Callers pass names
// they checked; replacing invalid UTF-8 keeps a query from throwing anyway.
std::string NamespacesJson(const NamespaceList& namespaces) {
  return nlohmann::json(namespaces).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

UnixMicros NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string RandomInstance() {
  std::random_device rd;
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
  return buf;
}

// Continue tokens: "<time>:<id>" of the last row of a page.
std::string Token(int64_t t, int64_t id) { return std::to_string(t) + ":" + std::to_string(id); }

Status ParseToken(const std::string& token, int64_t* t, int64_t* id) {
  size_t colon = token.find(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument("no colon");
    size_t used = 0;
    *t = std::stoll(token.substr(0, colon), &used);
    if (used != colon) throw std::invalid_argument("time");
    std::string rest = token.substr(colon + 1);
    *id = std::stoll(rest, &used);
    if (used != rest.size() || rest.empty()) throw std::invalid_argument("id");
  } catch (const std::exception&) {
    return InvalidArgument("continue: not a token from an earlier page: \"" + token + "\"");
  }
  return Status::Ok();
}

Interval ReadInterval(Stmt& s) {
  // Columns: uid, namespace, name, node, from_us, to_us, then kind-specific.
  Interval iv;
  iv.uid = s.Text(0);
  iv.namespace_ = s.Text(1);
  iv.name = s.Text(2);
  iv.node = s.Text(3);
  iv.from = s.Int(4);
  if (!s.IsNull(5)) iv.to = s.Int(5);
  return iv;
}

}  // namespace

struct Store::Metrics {
  explicit Metrics(prometheus::Registry& r)
      : healthy(prometheus::BuildGauge()
                    .Name("ashiato_store_healthy")
                    .Help("1 while the history store accepts writes; 0 while pushes get 503.")
                    .Register(r)
                    .Add({})),
        errors(prometheus::BuildCounter()
                   .Name("ashiato_store_errors_total")
                   .Help("Store failures that made it unhealthy (disk full, read-only, I/O, "
                         "corrupt).")
                   .Register(r)
                   .Add({})),
        commits(prometheus::BuildCounter()
                    .Name("ashiato_store_commits_total")
                    .Help("Transactions committed (reports that arrive during a commit share the "
                          "next one).")
                    .Register(r)
                    .Add({})),
        commit_seconds(
            prometheus::BuildHistogram()
                .Name("ashiato_store_commit_seconds")
                .Help("Time to commit one transaction (a group of reports).")
                .Register(r)
                .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                                 0.025, 0.05, 0.1, 0.25, 1})),
        retention_deleted(prometheus::BuildCounter()
                              .Name("ashiato_store_retention_deleted_rows_total")
                              .Help("History rows deleted by retention, by what decided.")
                              .Register(r)),
        by_age(retention_deleted.Add({{"reason", "age"}})),
        by_size(retention_deleted.Add({{"reason", "size"}})),
        bytes(prometheus::BuildGauge()
                  .Name("ashiato_store_bytes")
                  .Help("Bytes of the store in use (pages in use times page size).")
                  .Register(r)
                  .Add({})),
        checkpoints(prometheus::BuildCounter()
                        .Name("ashiato_store_checkpoints_total")
                        .Help("WAL checkpoints, by who ran them: the background thread, or a "
                              "commit (the thread fell behind).")
                        .Register(r)),
        background_checkpoints(checkpoints.Add({{"by", "background"}})),
        writer_checkpoints(checkpoints.Add({{"by", "writer"}})) {}
  prometheus::Gauge& healthy;
  prometheus::Counter& errors;
  prometheus::Counter& commits;
  prometheus::Histogram& commit_seconds;
  prometheus::Family<prometheus::Counter>& retention_deleted;
  prometheus::Counter& by_age;
  prometheus::Counter& by_size;
  prometheus::Gauge& bytes;
  prometheus::Family<prometheus::Counter>& checkpoints;
  prometheus::Counter& background_checkpoints;
  prometheus::Counter& writer_checkpoints;
};

Store::Store(StoreOptions options) : options_(std::move(options)) {
  path_ = (std::filesystem::path(options_.dir) / "ashiato.db").string();
  if (options_.registry) metrics_ = std::make_unique<Metrics>(*options_.registry);
  WalCheckpointerOptions ckpt;
  ckpt.path = path_;
  ckpt.pages = options_.wal_checkpoint_pages;
  ckpt.sync_full = options_.sync_full;
  ckpt.background = options_.background_checkpoints;
  if (metrics_) {
    ckpt.on_checkpoint = [m = metrics_.get()](bool background) {
      (background ? m->background_checkpoints : m->writer_checkpoints).Increment();
    };
  }
  checkpointer_ = std::make_unique<WalCheckpointer>(std::move(ckpt));
}

Store::~Store() {
  checkpointer_.reset();  // Its connection closes before the writer's.
  // The lock order everywhere is write_mu_, then read_mu_ (OpenLocked).
  std::lock_guard<std::mutex> w(write_mu_);
  std::lock_guard<std::mutex> r(read_mu_);
  for (sqlite3* db : readers_) sqlite3_close_v2(db);
  CloseWriterLocked();
}

Stmt& Store::WriterStatement(const char* sql) {
  auto& slot = writer_statements_[sql];
  if (!slot || !slot->ok()) {
    slot = std::make_unique<Stmt>(writer_, sql);
  } else {
    slot->Reset();
  }
  return *slot;
}

void Store::CloseWriterLocked() {
  writer_statements_.clear();
  if (writer_) sqlite3_close_v2(writer_);
  writer_ = nullptr;
}

Result<std::unique_ptr<Store>> Store::Open(StoreOptions options) {
  std::unique_ptr<Store> s(new Store(std::move(options)));
  std::lock_guard<std::mutex> w(s->write_mu_);
  Status st = s->OpenLocked();
  if (st.code() == StatusCode::kFailedPrecondition) return st;
  if (!st.ok()) {
    s->MarkUnhealthy(st);
  } else {
    spdlog::info("store {} open: instance {}", s->path_, s->instance_);
  }
  return s;
}

Status Store::OpenLocked() {
  CloseWriterLocked();
  {
    // Readers of an earlier file (moved away by an operator) must not linger.
    std::lock_guard<std::mutex> r(read_mu_);
    for (sqlite3* db : readers_) sqlite3_close_v2(db);
    readers_.clear();
  }
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  if (ec) return Unavailable("store: cannot create " + options_.dir + ": " + ec.message());
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path_.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status st = SqliteStatus(db, rc, "store: open " + path_);
    sqlite3_close_v2(db);
    return st;
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_extended_result_codes(db, 1);
  Status st = Migrate(db);
  if (st.ok()) {
    st = Exec(db, options_.sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  }
  if (st.ok()) {
    // Index pages of random keys (uids, IPs) are touched by every report: a
    // page cache that holds them saves a read per row. Checkpoints are the
    // WalCheckpointer's (attached below), a large WAL between them saves
    // their writes and fsyncs.
    st = Exec(db, ("PRAGMA cache_size=-" + std::to_string(options_.cache_kib) +
                   "; PRAGMA temp_store=MEMORY")
                      .c_str());
  }
  if (st.ok() && options_.max_page_count > 0) {
    st = Exec(db, ("PRAGMA max_page_count=" + std::to_string(options_.max_page_count)).c_str());
  }
  std::string instance;
  if (st.ok()) {
    Stmt q(db, "SELECT value FROM meta WHERE key='instance'");
    if (q.Step() == SQLITE_ROW) {
      instance = q.Text(0);
    } else {
      st = Internal("store: " + path_ + " has no instance id");
    }
  }
  if (!st.ok()) {
    sqlite3_close_v2(db);
    return st;
  }
  checkpointer_->Reset();  // The file may be another one than before.
  checkpointer_->Attach(db);
  writer_ = db;
  instance_ = instance;
  last_error_.clear();
  healthy_ = true;
  if (metrics_) metrics_->healthy.Set(1);
  return Status::Ok();
}

Status Store::Migrate(sqlite3* db) {
  auto read = SchemaVersion(db, path_);
  if (!read.ok()) return read.status();
  const int version = *read;
  if (version > kStoreSchemaVersion) {
    return FailedPrecondition("store " + path_ + " was written with schema version " +
                              std::to_string(version) + ", newer than this aggregator's " +
                              std::to_string(kStoreSchemaVersion) +
                              ": refusing to use it (run the newer aggregator, take the file "
                              "back with its --store-downgrade-to, or move the file away to "
                              "start a new store)");
  }
  if (version == kStoreSchemaVersion) return Exec(db, "PRAGMA journal_mode=WAL");
  // auto_vacuum must be chosen before the first table exists.
  if (version == 0) {
    if (Status st = Exec(db, "PRAGMA auto_vacuum=INCREMENTAL"); !st.ok()) return st;
  }
  if (Status st = Exec(db, "PRAGMA journal_mode=WAL"); !st.ok()) return st;
  if (Status st = Exec(db, "BEGIN IMMEDIATE"); !st.ok()) return st;
  Status st;
  for (int v = version; v < kStoreSchemaVersion && st.ok(); ++v) {
    st = Exec(db, kStoreMigrations[static_cast<size_t>(v)]);
  }
  if (st.ok() && version == 0) {
    UnixMicros now = NowMicros();
    Stmt ins(db, "INSERT INTO meta(key, value) VALUES(?, ?)");
    for (auto [k, v] : {std::pair<std::string, std::string>{"instance", RandomInstance()},
                        {"created_us", std::to_string(now)},
                        {"log_cursor", "0"}}) {
      ins.Reset();
      st = ins.Bind(1, k).Bind(2, v).Run("store: init meta");
      if (!st.ok()) break;
    }
    // Line ids of a new store start above any earlier store's (one event per
    // microsecond of its life at most), so they grow across a wiped volume.
    if (st.ok()) {
      Stmt seq(db, "INSERT INTO sqlite_sequence(name, seq) VALUES('events', ?)");
      st = seq.Bind(1, now).Run("store: seed event ids");
    }
  }
  if (st.ok()) {
    st = Exec(db, ("PRAGMA user_version=" + std::to_string(kStoreSchemaVersion)).c_str());
  }
  if (st.ok()) st = Exec(db, "COMMIT");
  if (!st.ok()) {
    (void)Exec(db, "ROLLBACK");  // Best effort: the error above is what matters.
    return st;
  }
  spdlog::info("store {}: schema migrated from version {} to {}", path_, version,
               kStoreSchemaVersion);
  return Status::Ok();
}

void Store::MarkUnhealthy(const Status& st) {
  bool was = healthy_.exchange(false);
  if (was || last_error_ != st.ToString()) {
    spdlog::error("store {} unhealthy, refusing pushes until it recovers: {}", path_,
                  st.ToString());
  }
  last_error_ = st.ToString();
  if (metrics_) {
    metrics_->healthy.Set(0);
    metrics_->errors.Increment();
  }
}

std::string Store::instance() const {
  std::lock_guard<std::mutex> w(write_mu_);
  return instance_;
}

std::string Store::last_error() const {
  std::lock_guard<std::mutex> w(write_mu_);
  return last_error_;
}

Status Store::Commit(const ChangeBatch& batch) {
  auto start = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> w(write_mu_);
  if (!writer_ || !healthy_) return Unavailable("store unavailable: " + last_error_);
  if (batch.empty()) return Status::Ok();
  sqlite3* db = writer_;
  Status st = Exec(db, "BEGIN IMMEDIATE");
  if (st.ok() && !batch.events.empty()) {
    Stmt& s = WriterStatement(
        "INSERT INTO events(ts_us, aggregated_us, event, uid, namespace, name, node, "
        "observed_by, line, replayed, out_of_scope) VALUES(?,?,?,?,?,?,?,?,?,?,?)");
    st = s.status("store: prepare events");
    for (size_t i = 0; st.ok() && i < batch.events.size(); ++i) {
      const EventRow& e = batch.events[i];
      if (i > 0) s.Reset();
      st = s.Bind(1, e.ts)
               .Bind(2, e.aggregated)
               .Bind(3, e.event)
               .Bind(4, e.uid)
               .Bind(5, e.namespace_)
               .Bind(6, e.name)
               .Bind(7, e.node)
               .Bind(8, e.observed_by)
               .Bind(9, e.line)
               .Bind(10, int64_t{e.replayed})
               .Bind(11, int64_t{e.out_of_scope})
               .Run("store: insert event");
    }
  }
  for (size_t i = 0; st.ok() && i < batch.intervals.size(); ++i) {
    const IntervalOp& op = batch.intervals[i];
    using K = IntervalOp::Kind;
    using A = IntervalOp::Action;
    if (op.action == A::kOpen) {
      const char* sql =
          op.kind == K::kPlacement
              ? "INSERT INTO placements(uid, namespace, name, node, from_us, to_us) "
                "VALUES(?,?,?,?,?,?)"
          : op.kind == K::kIpLease
              ? "INSERT INTO ip_leases(uid, namespace, name, node, from_us, to_us, ip) "
                "VALUES(?,?,?,?,?,?,?)"
              : "INSERT INTO image_usage(uid, namespace, name, node, from_us, to_us, container, "
                "image, digest) VALUES(?,?,?,?,?,?,?,?,?)";
      Stmt& s = WriterStatement(sql);
      s.Bind(1, op.uid).Bind(2, op.namespace_).Bind(3, op.name).Bind(4, op.node).Bind(5, op.from);
      if (op.to) {
        s.Bind(6, std::max(op.to, op.from));
      } else {
        s.BindNull(6);
      }
      if (op.kind == K::kIpLease) s.Bind(7, op.ip);
      if (op.kind == K::kImage) s.Bind(7, op.container).Bind(8, op.image).Bind(9, op.digest);
      st = s.Run("store: open interval");
    } else if (op.action == A::kClose) {
      const char* sql =
          op.kind == K::kPlacement
              ? "UPDATE placements SET to_us = max(?1, from_us) WHERE uid = ?2 AND to_us IS NULL"
          : op.kind == K::kIpLease
              ? "UPDATE ip_leases SET to_us = max(?1, from_us) WHERE uid = ?2 AND to_us IS NULL "
                "AND ip = ?3"
              : "UPDATE image_usage SET to_us = max(?1, from_us) WHERE uid = ?2 AND to_us IS "
                "NULL AND container = ?3 AND image = ?4";
      Stmt& s = WriterStatement(sql);
      s.Bind(1, op.to).Bind(2, op.uid);
      if (op.kind == K::kIpLease) s.Bind(3, op.ip);
      if (op.kind == K::kImage) s.Bind(3, op.container).Bind(4, op.image);
      st = s.Run("store: close interval");
    } else {
      Stmt& s = WriterStatement(
          "UPDATE image_usage SET digest = ?1 WHERE uid = ?2 AND to_us IS NULL AND "
          "container = ?3 AND image = ?4");
      st = s.Bind(1, op.digest)
               .Bind(2, op.uid)
               .Bind(3, op.container)
               .Bind(4, op.image)
               .Run("store: set digest");
    }
  }
  if (st.ok() && !batch.pods.empty()) {
    // An upsert, not INSERT OR REPLACE: REPLACE deletes the row and inserts
    // it under a new rowid, writing the old leaf, the table's last leaf and
    // the uid index; an update in place writes the row's leaf only.
    Stmt& s = WriterStatement(
        "INSERT INTO pods(uid, namespace, name, node, observed_by, epoch, seq, "
        "resource_version, deleted, deleted_by_snapshot, last_change_us, record) "
        "VALUES(?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(uid) DO UPDATE SET "
        "namespace = excluded.namespace, name = excluded.name, node = excluded.node, "
        "observed_by = excluded.observed_by, epoch = excluded.epoch, seq = excluded.seq, "
        "resource_version = excluded.resource_version, deleted = excluded.deleted, "
        "deleted_by_snapshot = excluded.deleted_by_snapshot, "
        "last_change_us = excluded.last_change_us, record = excluded.record");
    st = s.status("store: prepare pods");
    for (size_t i = 0; st.ok() && i < batch.pods.size(); ++i) {
      const PodRow& p = batch.pods[i];
      if (i > 0) s.Reset();
      st = s.Bind(1, p.uid)
               .Bind(2, p.namespace_)
               .Bind(3, p.name)
               .Bind(4, p.node)
               .Bind(5, p.observed_by)
               .Bind(6, p.epoch)
               .Bind(7, static_cast<int64_t>(p.seq))
               .Bind(8, p.resource_version)
               .Bind(9, int64_t{p.deleted})
               .Bind(10, int64_t{p.deleted_by_snapshot})
               .Bind(11, p.last_change)
               .Bind(12, p.record)
               .Run("store: upsert pod");
    }
  }
  if (st.ok() && !batch.nodes.empty()) {
    Stmt& s = WriterStatement(
        "INSERT INTO nodes(node, epoch, last_seq, retired_epochs, last_snapshot_us, reports) "
        "VALUES(?,?,?,?,?,?) ON CONFLICT(node) DO UPDATE SET epoch = excluded.epoch, "
        "last_seq = excluded.last_seq, retired_epochs = excluded.retired_epochs, "
        "last_snapshot_us = excluded.last_snapshot_us, reports = excluded.reports");
    st = s.status("store: prepare nodes");
    for (size_t i = 0; st.ok() && i < batch.nodes.size(); ++i) {
      const NodeRow& n = batch.nodes[i];
      if (i > 0) s.Reset();
      st = s.Bind(1, n.node)
               .Bind(2, n.epoch)
               .Bind(3, static_cast<int64_t>(n.last_seq))
               .Bind(4, nlohmann::json(n.retired_epochs).dump())
               .Bind(5, n.last_snapshot)
               .Bind(6, static_cast<int64_t>(n.reports))
               .Run("store: upsert node");
    }
  }
  if (st.ok() && !batch.outbox.empty()) {
    Stmt s(db, "INSERT INTO deployment_outbox(created_us, deployment_name, body) VALUES(?,?,?)");
    st = s.status("store: prepare outbox");
    for (size_t i = 0; st.ok() && i < batch.outbox.size(); ++i) {
      const OutboxRow& o = batch.outbox[i];
      s.Reset();
      st = s.Bind(1, o.created).Bind(2, o.key).Bind(3, o.body).Run("store: insert outbox row");
    }
  }
  for (auto it = batch.meta.begin(); st.ok() && it != batch.meta.end(); ++it) {
    Stmt s(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
    st = s.Bind(1, it->first).Bind(2, it->second).Run("store: write meta");
  }
  if (st.ok()) st = Exec(db, "COMMIT");
  if (!st.ok()) {
    (void)Exec(db, "ROLLBACK");  // Best effort: `st` says what went wrong.
    if (st.code() != StatusCode::kInternal) MarkUnhealthy(st);
    if (st.code() == StatusCode::kDataLoss) st = Unavailable(st.message());
    return st;
  }
  if (metrics_) {
    metrics_->commits.Increment();
    metrics_->commit_seconds.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return Status::Ok();
}

void Store::SetMaxPageCountForTest(int64_t pages) {
  std::lock_guard<std::mutex> w(write_mu_);
  options_.max_page_count = pages;
  if (writer_) {
    (void)Exec(
        writer_,
        ("PRAGMA max_page_count=" + std::to_string(pages > 0 ? pages : 4294967294LL)).c_str());
  }
}

Status Store::Probe() {
  std::lock_guard<std::mutex> w(write_mu_);
  if (healthy_) return Status::Ok();
  bool reopen = !writer_ || last_error_.rfind("DataLoss", 0) == 0;
  Status st;
  if (reopen) {
    st = OpenLocked();
    if (st.ok()) {
      // A file that opens may still be damaged further in.
      Stmt q(writer_, "PRAGMA quick_check(1)");
      int rc = q.Step();
      if (rc != SQLITE_ROW) {
        st = SqliteStatus(writer_, rc, "store: quick_check");
      } else if (q.Text(0) != "ok") {
        st = Status(StatusCode::kDataLoss, "store: quick_check: " + q.Text(0));
      }
    }
  } else {
    // Room for a typical report, not just one row: a nearly full disk
    // would otherwise flap between healthy and unhealthy.
    st = Exec(writer_,
              "BEGIN IMMEDIATE; INSERT OR REPLACE INTO meta(key, value) VALUES('probe', "
              "hex(zeroblob(262144))); DELETE FROM meta WHERE key = 'probe'; COMMIT");
    if (!st.ok()) (void)Exec(writer_, "ROLLBACK");
  }
  if (!st.ok()) {
    healthy_ = false;
    if (last_error_ != st.ToString()) {
      spdlog::warn("store {} still unhealthy: {}", path_, st.ToString());
      last_error_ = st.ToString();
    }
    if (metrics_) metrics_->healthy.Set(0);
    return st;
  }
  healthy_ = true;
  last_error_.clear();
  if (metrics_) metrics_->healthy.Set(1);
  spdlog::info("store {} healthy again (instance {})", path_, instance_);
  return Status::Ok();
}

template <typename T>
Result<T> Store::Read(const std::function<Result<T>(sqlite3*)>& fn) {
  sqlite3* db = nullptr;
  {
    std::lock_guard<std::mutex> r(read_mu_);
    if (!readers_.empty()) {
      db = readers_.back();
      readers_.pop_back();
    }
  }
  if (!db) {
    {
      std::lock_guard<std::mutex> w(write_mu_);
      if (!writer_) return Unavailable("store unavailable: " + last_error_);
    }
    int rc =
        sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      Status st = SqliteStatus(db, rc, "store: open reader");
      sqlite3_close_v2(db);
      return st;
    }
    sqlite3_busy_timeout(db, 5000);
    (void)Exec(db, "PRAGMA query_only=ON");  // A guard only; reads work without it.
  }
  Result<T> out = fn(db);
  std::lock_guard<std::mutex> r(read_mu_);
  if (readers_.size() < 8) {
    readers_.push_back(db);
  } else {
    sqlite3_close_v2(db);
  }
  return out;
}

Status Store::LoadPods(size_t max_tombstones, const std::function<void(PodRow&&)>& fn) {
  auto r = Read<bool>([&](sqlite3* db) -> Result<bool> {
    const std::string cols =
        "uid, namespace, name, node, observed_by, epoch, seq, resource_version, deleted, "
        "deleted_by_snapshot, last_change_us, record";
    // Tombstones first (oldest first), then live pods.
    Stmt s(db, "SELECT * FROM (SELECT " + cols +
                   " FROM pods WHERE deleted = 1 ORDER BY last_change_us DESC LIMIT ?) "
                   "ORDER BY last_change_us");
    Stmt live(db, "SELECT " + cols + " FROM pods WHERE deleted = 0");
    if (!s.ok()) return s.status("store: load pods");
    if (!live.ok()) return live.status("store: load pods");
    s.Bind(1, static_cast<int64_t>(max_tombstones));
    for (Stmt* q : {&s, &live}) {
      int rc;
      while ((rc = q->Step()) == SQLITE_ROW) {
        PodRow p;
        p.uid = q->Text(0);
        p.namespace_ = q->Text(1);
        p.name = q->Text(2);
        p.node = q->Text(3);
        p.observed_by = q->Text(4);
        p.epoch = q->Text(5);
        p.seq = static_cast<uint64_t>(q->Int(6));
        p.resource_version = q->Text(7);
        p.deleted = q->Int(8) != 0;
        p.deleted_by_snapshot = q->Int(9) != 0;
        p.last_change = q->Int(10);
        p.record = q->Text(11);
        fn(std::move(p));
      }
      if (rc != SQLITE_DONE) return SqliteStatus(db, rc, "store: load pods");
    }
    return true;
  });
  return r.ok() ? Status::Ok() : r.status();
}

Status Store::LoadNodes(const std::function<void(NodeRow&&)>& fn) {
  auto r = Read<bool>([&](sqlite3* db) -> Result<bool> {
    Stmt s(db,
           "SELECT node, epoch, last_seq, retired_epochs, last_snapshot_us, reports FROM nodes");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      NodeRow n;
      n.node = s.Text(0);
      n.epoch = s.Text(1);
      n.last_seq = static_cast<uint64_t>(s.Int(2));
      auto retired = nlohmann::json::parse(s.Text(3), nullptr, false);
      if (retired.is_array()) {
        for (const auto& e : retired) {
          if (e.is_string()) n.retired_epochs.push_back(e.get<std::string>());
        }
      }
      n.last_snapshot = s.Int(4);
      n.reports = static_cast<uint64_t>(s.Int(5));
      fn(std::move(n));
    }
    if (rc != SQLITE_DONE) return SqliteStatus(db, rc, "store: load nodes");
    return true;
  });
  return r.ok() ? Status::Ok() : r.status();
}

Status Store::PutNodeInfo(const std::vector<NodeInfoRow>& rows) {
  std::lock_guard<std::mutex> w(write_mu_);
  if (!writer_ || !healthy_) return Unavailable("store unavailable: " + last_error_);
  if (rows.empty()) return Status::Ok();
  sqlite3* db = writer_;
  Status st = Exec(db, "BEGIN IMMEDIATE");
  if (st.ok()) {
    Stmt s(db,
           "INSERT OR REPLACE INTO node_info(node, info, deleted, updated_us) VALUES(?, ?, ?, ?)");
    st = s.status("store: prepare node info");
    for (size_t i = 0; st.ok() && i < rows.size(); ++i) {
      const NodeInfoRow& r = rows[i];
      s.Reset();
      st = s.Bind(1, r.node)
               .Bind(2, r.info)
               .Bind(3, int64_t{r.deleted})
               .Bind(4, r.updated)
               .Run("store: write node info");
    }
  }
  if (!st.ok()) {
    (void)Exec(db, "ROLLBACK");
    return st;
  }
  return Exec(db, "COMMIT");
}

Status Store::LoadNodeInfo(const std::function<void(NodeInfoRow&&)>& fn) {
  auto r = Read<bool>([&](sqlite3* db) -> Result<bool> {
    Stmt s(db, "SELECT node, info, deleted, updated_us FROM node_info");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      fn(NodeInfoRow{s.Text(0), s.Text(1), s.Int(2) != 0, s.Int(3)});
    }
    if (rc != SQLITE_DONE) return SqliteStatus(db, rc, "store: load node info");
    return true;
  });
  return r.ok() ? Status::Ok() : r.status();
}

Result<std::vector<StoredEvent>> Store::EventsAfter(int64_t after, size_t limit) {
  return Read<std::vector<StoredEvent>>([&](sqlite3* db) -> Result<std::vector<StoredEvent>> {
    Stmt s(db,
           "SELECT id, ts_us, line, replayed, event, out_of_scope FROM events WHERE id > ? ORDER "
           "BY id "
           "LIMIT ?");
    s.Bind(1, after).Bind(2, static_cast<int64_t>(limit));
    std::vector<StoredEvent> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      out.push_back({s.Int(0), s.Int(1), s.Text(2), s.Int(3) != 0, s.Text(4), s.Int(5) != 0});
    }
    if (rc != SQLITE_DONE) return SqliteStatus(db, rc, "store: read events");
    return out;
  });
}

Result<std::string> Store::Meta(const std::string& key) {
  return Read<std::string>([&](sqlite3* db) -> Result<std::string> {
    Stmt s(db, "SELECT value FROM meta WHERE key = ?");
    s.Bind(1, key);
    int rc = s.Step();
    if (rc == SQLITE_DONE) return std::string();
    if (rc != SQLITE_ROW) return SqliteStatus(db, rc, "store: read meta " + key);
    return s.Text(0);
  });
}

Result<int64_t> Store::LogCursor() {
  return Read<int64_t>([&](sqlite3* db) -> Result<int64_t> {
    Stmt s(db, "SELECT value FROM meta WHERE key = 'log_cursor'");
    int rc = s.Step();
    if (rc == SQLITE_DONE) return int64_t{0};
    if (rc != SQLITE_ROW) return SqliteStatus(db, rc, "store: read log cursor");
    return static_cast<int64_t>(std::stoll("0" + s.Text(0)));
  });
}

Status Store::SetLogCursor(int64_t id) {
  std::lock_guard<std::mutex> w(write_mu_);
  if (!writer_) return Unavailable("store unavailable: " + last_error_);
  Stmt& s = WriterStatement("INSERT OR REPLACE INTO meta(key, value) VALUES('log_cursor', ?)");
  if (!s.ok()) return s.status("store: prepare log cursor");
  return s.Bind(1, std::to_string(id)).Run("store: write log cursor");
}

Result<std::vector<OutboxEntry>> Store::DueOutbox(UnixMicros now, size_t limit,
                                                  const std::vector<std::string>& busy) {
  return Read<std::vector<OutboxEntry>>([&](sqlite3* db) -> Result<std::vector<OutboxEntry>> {
    Stmt s(db,
           "SELECT id, created_us, deployment_name, body, attempts, next_attempt_us, last_error "
           "FROM deployment_outbox o WHERE next_attempt_us <= ?1 AND NOT EXISTS (SELECT 1 FROM "
           "deployment_outbox p WHERE p.deployment_name = o.deployment_name AND p.id < o.id) "
           "AND deployment_name NOT IN (SELECT value FROM json_each(?2)) ORDER BY id LIMIT ?3");
    if (!s.ok()) return s.status("store: outbox query");
    s.Bind(1, now).Bind(2, NamespacesJson(busy)).Bind(3, static_cast<int64_t>(limit));
    std::vector<OutboxEntry> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      out.push_back({s.Int(0), s.Int(1), s.Text(2), s.Text(3), s.Int(4), s.Int(5), s.Text(6)});
    }
    if (rc != SQLITE_DONE) return SqliteStatus(db, rc, "store: read outbox");
    return out;
  });
}

Status Store::DeleteOutbox(int64_t id) {
  std::lock_guard<std::mutex> w(write_mu_);
  if (!writer_ || !healthy_) return Unavailable("store unavailable: " + last_error_);
  Stmt s(writer_, "DELETE FROM deployment_outbox WHERE id = ?");
  return s.Bind(1, id).Run("store: delete outbox row");
}

Status Store::RescheduleOutbox(int64_t id, int64_t attempts, UnixMicros next_attempt,
                               const std::string& error) {
  std::lock_guard<std::mutex> w(write_mu_);
  if (!writer_ || !healthy_) return Unavailable("store unavailable: " + last_error_);
  Stmt s(writer_,
         "UPDATE deployment_outbox SET attempts = ?, next_attempt_us = ?, last_error = ? WHERE "
         "id = ?");
  return s.Bind(1, attempts)
      .Bind(2, next_attempt)
      .Bind(3, error)
      .Bind(4, id)
      .Run("store: reschedule outbox row");
}

Result<std::pair<int64_t, UnixMicros>> Store::OutboxDepth() {
  return Read<std::pair<int64_t, UnixMicros>>(
      [&](sqlite3* db) -> Result<std::pair<int64_t, UnixMicros>> {
        Stmt s(db, "SELECT count(*), min(next_attempt_us) FROM deployment_outbox");
        int rc = s.Step();
        if (rc != SQLITE_ROW) return SqliteStatus(db, rc, "store: outbox depth");
        return std::pair<int64_t, UnixMicros>{s.Int(0), s.IsNull(1) ? 0 : s.Int(1)};
      });
}

Result<int64_t> Store::LastEventId() {
  return Read<int64_t>([&](sqlite3* db) -> Result<int64_t> {
    Stmt s(db, "SELECT max(id) FROM events");
    int rc = s.Step();
    if (rc != SQLITE_ROW) return SqliteStatus(db, rc, "store: last event id");
    return s.IsNull(0) ? int64_t{0} : s.Int(0);
  });
}

Result<Page<StoredEvent>> Store::Events(const EventFilter& f, const std::string& cont,
                                        size_t limit) {
  int64_t after_t = 0, after_id = 0;
  if (!cont.empty()) {
    if (Status st = ParseToken(cont, &after_t, &after_id); !st.ok()) return st;
  }
  return Read<Page<StoredEvent>>([&](sqlite3* db) -> Result<Page<StoredEvent>> {
    std::string sql = "SELECT id, ts_us, line FROM events WHERE 1";
    if (f.since) sql += " AND ts_us >= :since";
    if (f.until) sql += " AND ts_us < :until";
    if (!f.namespace_.empty()) sql += " AND namespace = :ns";
    if (!f.name.empty()) sql += " AND name = :name";
    if (!f.uid.empty()) sql += " AND uid = :uid";
    if (!f.node.empty()) sql += " AND node = :node";
    if (f.namespaces) sql += " AND namespace IN (SELECT value FROM json_each(:nss))";
    if (!f.events.empty()) sql += " AND event IN (SELECT value FROM json_each(:evs))";
    if (!cont.empty()) sql += " AND (ts_us > :at OR (ts_us = :at AND id > :aid))";
    sql += " ORDER BY ts_us, id LIMIT :limit";
    Stmt s(db, sql);
    if (!s.ok()) return s.status("store: events query");
    int i = 1;
    if (f.since) s.Bind(i++, *f.since);
    if (f.until) s.Bind(i++, *f.until);
    if (!f.namespace_.empty()) s.Bind(i++, f.namespace_);
    if (!f.name.empty()) s.Bind(i++, f.name);
    if (!f.uid.empty()) s.Bind(i++, f.uid);
    if (!f.node.empty()) s.Bind(i++, f.node);
    if (f.namespaces) s.Bind(i++, NamespacesJson(*f.namespaces));
    if (!f.events.empty()) s.Bind(i++, NamespacesJson(f.events));
    if (!cont.empty()) {
      s.Bind(i++, after_t);
      s.Bind(i++, after_id);
    }
    s.Bind(i++, static_cast<int64_t>(limit + 1));
    Page<StoredEvent> page;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      page.items.push_back({s.Int(0), s.Int(1), s.Text(2), false});
    }
    if (rc != SQLITE_DONE) return SqliteStatus(db, rc, "store: events query");
    if (page.items.size() > limit) {
      page.items.resize(limit);
      page.next = Token(page.items.back().ts, page.items.back().id);
    }
    return page;
  });
}

namespace {

// Runs an interval query whose columns are uid, namespace, name, node,
// from_us, to_us, id, then `extra` kind-specific ones; pages newest first.
template <typename Bind>
Result<Page<Interval>> IntervalPage(sqlite3* db, const std::string& sql, Bind bind, size_t limit,
                                    int extra_kind) {
  Stmt s(db, sql);
  if (!s.ok()) return s.status("store: interval query");
  bind(s);
  Page<Interval> page;
  std::vector<int64_t> ids;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    Interval iv = ReadInterval(s);
    ids.push_back(s.Int(6));
    if (extra_kind == 1) iv.ip = s.Text(7);
    if (extra_kind == 2) {
      iv.container = s.Text(7);
      iv.image = s.Text(8);
      iv.digest = s.Text(9);
    }
    page.items.push_back(std::move(iv));
  }
  if (rc != SQLITE_DONE) return SqliteStatus(db, rc, "store: interval query");
  if (page.items.size() > limit) {
    page.items.resize(limit);
    page.next = Token(page.items.back().from, ids[limit - 1]);
  }
  return page;
}

}  // namespace

Result<Page<Interval>> Store::IpLeases(const std::string& ip, std::optional<UnixMicros> at,
                                       const std::string& cont, size_t limit,
                                       const NamespaceList* namespaces) {
  int64_t ct = 0, cid = 0;
  if (!cont.empty()) {
    if (Status st = ParseToken(cont, &ct, &cid); !st.ok()) return st;
  }
  std::string sql =
      "SELECT uid, namespace, name, node, from_us, to_us, id, ip FROM ip_leases WHERE ip = ?1";
  sql += at ? " AND from_us <= ?2 AND (to_us IS NULL OR to_us > ?2)" : " AND to_us IS NULL";
  if (namespaces) sql += " AND namespace IN (SELECT value FROM json_each(?6))";
  if (!cont.empty()) sql += " AND (from_us < ?3 OR (from_us = ?3 AND id < ?4))";
  sql += " ORDER BY from_us DESC, id DESC LIMIT ?5";
  return Read<Page<Interval>>([&](sqlite3* db) {
    return IntervalPage(
        db, sql,
        [&](Stmt& s) {
          s.Bind(1, ip).Bind(3, ct).Bind(4, cid).Bind(5, static_cast<int64_t>(limit + 1));
          if (at) s.Bind(2, *at);
          if (namespaces) s.Bind(6, NamespacesJson(*namespaces));
        },
        limit, 1);
  });
}

Result<Page<Interval>> Store::Placements(const std::string& ns, const std::string& name,
                                         const std::string& node, std::optional<UnixMicros> at,
                                         const std::string& cont, size_t limit,
                                         const NamespaceList* namespaces) {
  int64_t ct = 0, cid = 0;
  if (!cont.empty()) {
    if (Status st = ParseToken(cont, &ct, &cid); !st.ok()) return st;
  }
  std::string sql = "SELECT uid, namespace, name, node, from_us, to_us, id FROM placements WHERE 1";
  if (!ns.empty()) sql += " AND namespace = ?1";
  if (!name.empty()) sql += " AND name = ?2";
  if (!node.empty()) sql += " AND node = ?6";
  if (at) sql += " AND from_us <= ?7 AND (to_us IS NULL OR to_us > ?7)";
  if (namespaces) sql += " AND namespace IN (SELECT value FROM json_each(?8))";
  if (!cont.empty()) sql += " AND (from_us < ?3 OR (from_us = ?3 AND id < ?4))";
  sql += " ORDER BY from_us DESC, id DESC LIMIT ?5";
  return Read<Page<Interval>>([&](sqlite3* db) {
    return IntervalPage(
        db, sql,
        [&](Stmt& s) {
          s.Bind(1, ns).Bind(2, name).Bind(3, ct).Bind(4, cid);
          s.Bind(5, static_cast<int64_t>(limit + 1)).Bind(6, node);
          if (at) s.Bind(7, *at);
          if (namespaces) s.Bind(8, NamespacesJson(*namespaces));
        },
        limit, 0);
  });
}

Status Store::PlacementsOverlapping(UnixMicros from, UnixMicros to,
                                    const std::function<void(Interval&&)>& fn) {
  auto r = Read<bool>([&](sqlite3* db) -> Result<bool> {
    Stmt s(db,
           "SELECT uid, namespace, name, node, from_us, to_us FROM placements "
           "WHERE from_us < ?1 AND (to_us IS NULL OR to_us >= ?2)");
    s.Bind(1, to).Bind(2, from);
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) fn(ReadInterval(s));
    if (rc != SQLITE_DONE) return SqliteStatus(db, rc, "store: placements");
    return true;
  });
  return r.ok() ? Status::Ok() : r.status();
}

Result<std::vector<std::string>> Store::UidsOfName(const std::string& ns, const std::string& name) {
  return Read<std::vector<std::string>>([&](sqlite3* db) -> Result<std::vector<std::string>> {
    Stmt s(db,
           "SELECT uid, min(ts_us) AS first FROM events WHERE namespace = ? AND name = ? "
           "GROUP BY uid ORDER BY first");
    s.Bind(1, ns).Bind(2, name);
    std::vector<std::string> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) out.push_back(s.Text(0));
    if (rc != SQLITE_DONE) return SqliteStatus(db, rc, "store: uids of name");
    return out;
  });
}

Result<std::vector<ImageUse>> Store::ImagesAt(UnixMicros at, const NamespaceList* namespaces) {
  return Read<std::vector<ImageUse>>([&](sqlite3* db) -> Result<std::vector<ImageUse>> {
    std::string sql =
        "SELECT image, digest, count(DISTINCT uid) AS pods, count(DISTINCT node) FROM "
        "image_usage WHERE from_us <= ?1 AND (to_us IS NULL OR to_us > ?1)";
    if (namespaces) sql += " AND namespace IN (SELECT value FROM json_each(?2))";
    sql += " GROUP BY image, digest ORDER BY pods DESC, image, digest";
    Stmt s(db, sql);
    s.Bind(1, at);
    if (namespaces) s.Bind(2, NamespacesJson(*namespaces));
    std::vector<ImageUse> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      out.push_back({s.Text(0), s.Text(1), s.Int(2), s.Int(3)});
    }
    if (rc != SQLITE_DONE) return SqliteStatus(db, rc, "store: images");
    return out;
  });
}

Result<Page<Interval>> Store::ImageUsage(const std::string& image_or_digest,
                                         const std::string& cont, size_t limit,
                                         const NamespaceList* namespaces,
                                         std::optional<UnixMicros> since,
                                         std::optional<UnixMicros> until) {
  int64_t ct = 0, cid = 0;
  if (!cont.empty()) {
    if (Status st = ParseToken(cont, &ct, &cid); !st.ok()) return st;
  }
  std::string sql =
      "SELECT uid, namespace, name, node, from_us, to_us, id, container, image, digest FROM "
      "image_usage WHERE (image = ?1 OR digest = ?1)";
  if (namespaces) sql += " AND namespace IN (SELECT value FROM json_each(?5))";
  // Intervals overlapping [since, until).
  if (since) sql += " AND (to_us IS NULL OR to_us > ?6)";
  if (until) sql += " AND from_us < ?7";
  if (!cont.empty()) sql += " AND (from_us < ?2 OR (from_us = ?2 AND id < ?3))";
  sql += " ORDER BY from_us DESC, id DESC LIMIT ?4";
  return Read<Page<Interval>>([&](sqlite3* db) {
    return IntervalPage(
        db, sql,
        [&](Stmt& s) {
          s.Bind(1, image_or_digest).Bind(2, ct).Bind(3, cid);
          s.Bind(4, static_cast<int64_t>(limit + 1));
          if (namespaces) s.Bind(5, NamespacesJson(*namespaces));
          if (since) s.Bind(6, *since);
          if (until) s.Bind(7, *until);
        },
        limit, 2);
  });
}

Result<std::vector<std::string>> Store::Namespaces() {
  return Read<std::vector<std::string>>([&](sqlite3* db) -> Result<std::vector<std::string>> {
    // A skip scan of placements_by_name: one index seek per namespace.
    Stmt s(db,
           "WITH RECURSIVE ns(n) AS (SELECT min(namespace) FROM placements UNION ALL "
           "SELECT (SELECT min(namespace) FROM placements WHERE namespace > ns.n) FROM ns "
           "WHERE ns.n IS NOT NULL) SELECT n FROM ns WHERE n IS NOT NULL");
    std::vector<std::string> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) out.push_back(s.Text(0));
    if (rc != SQLITE_DONE) return SqliteStatus(db, rc, "store: namespaces");
    return out;
  });
}

Result<uint64_t> Store::DeleteChunk(const char* sql, int64_t arg1, int64_t arg2) {
  std::lock_guard<std::mutex> w(write_mu_);
  if (!writer_ || !healthy_) return Unavailable("store unavailable: " + last_error_);
  Stmt s(writer_, sql);
  s.Bind(1, arg1).Bind(2, arg2).Bind(3, static_cast<int64_t>(options_.retention_chunk));
  Status st = s.Run("store: retention");
  if (!st.ok()) {
    if (st.code() != StatusCode::kInternal) MarkUnhealthy(st);
    return st;
  }
  return static_cast<uint64_t>(sqlite3_changes(writer_));
}

Result<RetentionResult> Store::EnforceRetention(UnixMicros now) {
  RetentionResult out;
  auto cursor = LogCursor();
  if (!cursor.ok()) return cursor.status();
  // Deletes everything that ended before `cutoff`, one chunk at a time.
  auto delete_before = [&](int64_t cutoff, prometheus::Counter* counter) -> Status {
    auto drain = [&](const char* sql, uint64_t* counted) -> Status {
      while (true) {
        auto n = DeleteChunk(sql, cutoff, *cursor);
        if (!n.ok()) return n.status();
        *counted += *n;
        if (counter) counter->Increment(static_cast<double>(*n));
        if (*n < static_cast<uint64_t>(options_.retention_chunk)) return Status::Ok();
      }
    };
    if (Status st = drain(kRetentionSql.events, &out.events_deleted); !st.ok()) return st;
    for (const char* sql : kRetentionSql.intervals) {
      if (Status st = drain(sql, &out.intervals_deleted); !st.ok()) return st;
    }
    return drain(kRetentionSql.pods, &out.pods_deleted);
  };
  if (options_.retention.count() > 0) {
    int64_t cutoff =
        now - std::chrono::duration_cast<std::chrono::microseconds>(options_.retention).count();
    Status st = delete_before(cutoff, metrics_ ? &metrics_->by_age : nullptr);
    if (!st.ok()) return st;
  }
  if (options_.retention_bytes > 0) {
    for (int round = 0; round < 10000; ++round) {
      auto size = Size();
      if (!size.ok()) return size.status();
      if (size->bytes <= options_.retention_bytes || !size->oldest_event) break;
      // The time below which the oldest chunk of events lies.
      auto cutoff = Read<int64_t>([&](sqlite3* db) -> Result<int64_t> {
        Stmt s(db, "SELECT ts_us FROM events ORDER BY ts_us LIMIT 1 OFFSET ?");
        s.Bind(1, static_cast<int64_t>(options_.retention_chunk));
        int rc = s.Step();
        if (rc == SQLITE_ROW) return s.Int(0) + 1;
        if (rc == SQLITE_DONE) return now;  // Fewer events than a chunk: all of them.
        return SqliteStatus(db, rc, "store: size retention");
      });
      if (!cutoff.ok()) return cutoff.status();
      uint64_t before = out.events_deleted + out.intervals_deleted + out.pods_deleted;
      Status st = delete_before(*cutoff, metrics_ ? &metrics_->by_size : nullptr);
      if (!st.ok()) return st;
      out.by_size = true;
      if (out.events_deleted + out.intervals_deleted + out.pods_deleted == before) break;
    }
  }
  if (out.events_deleted + out.intervals_deleted + out.pods_deleted > 0) {
    // Give freed pages back to the file system, a bounded amount at a time.
    for (int i = 0; i < 1000; ++i) {
      std::lock_guard<std::mutex> w(write_mu_);
      if (!writer_) break;
      Stmt free_pages(writer_, "PRAGMA freelist_count");
      if (free_pages.Step() != SQLITE_ROW || free_pages.Int(0) == 0) break;
      if (!Exec(writer_, "PRAGMA incremental_vacuum(2000)").ok()) break;
    }
  }
  return out;
}

Result<StoreSize> Store::Size() {
  auto r = Read<StoreSize>([&](sqlite3* db) -> Result<StoreSize> {
    StoreSize out;
    int64_t pages = 0, free = 0, page_size = 0;
    for (auto [sql, dst] : {std::pair<const char*, int64_t*>{"PRAGMA page_count", &pages},
                            {"PRAGMA freelist_count", &free},
                            {"PRAGMA page_size", &page_size}}) {
      Stmt s(db, sql);
      int rc = s.Step();
      if (rc != SQLITE_ROW) return SqliteStatus(db, rc, sql);
      *dst = s.Int(0);
    }
    out.bytes = static_cast<uint64_t>((pages - free) * page_size);
    Stmt c(db, "SELECT min(ts_us) FROM events");
    int rc = c.Step();
    if (rc != SQLITE_ROW) return SqliteStatus(db, rc, "store: oldest event");
    if (!c.IsNull(0)) out.oldest_event = c.Int(0);
    return out;
  });
  if (r.ok()) {
    std::error_code ec;
    auto fs = std::filesystem::file_size(path_, ec);
    if (!ec) r->file_bytes = fs;
    auto wal = std::filesystem::file_size(path_ + "-wal", ec);
    if (!ec) r->file_bytes += wal;
    if (metrics_) metrics_->bytes.Set(static_cast<double>(r->bytes));
  }
  return r;
}

}  // namespace ashiato
