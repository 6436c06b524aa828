#include "aggregator/store/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "aggregator/store/schema.h"
#include "aggregator/test_util.h"

namespace ashiato {
namespace {

using testutil::Placement;
using testutil::TempDir;
using testutil::TempStore;

EventRow Event(const std::string& name, UnixMicros ts) {
  EventRow e;
  e.event = "CREATED";
  e.ts = ts;
  e.aggregated = ts;
  e.uid = "uid-" + name;
  e.namespace_ = "default";
  e.name = name;
  e.node = "n1";
  e.observed_by = "n1";
  e.line = "{\"pod_name\":\"" + name + "\"}";
  return e;
}

int SqliteExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(db);
  return rc;
}

TEST(StoreTest, InstanceSurvivesReopenAndIdsGrowAcrossWipes) {
  TempStore s;
  ASSERT_NE(s.get(), nullptr);
  ASSERT_TRUE(s->healthy());
  std::string instance = s->instance();
  EXPECT_EQ(instance.size(), 32u);
  ChangeBatch b;
  b.events = {Event("a", 1), Event("b", 2)};
  ASSERT_TRUE(s->Commit(b).ok());
  auto last = s->LastEventId();
  ASSERT_TRUE(last.ok());
  s.Reopen();
  EXPECT_EQ(s->instance(), instance);
  EXPECT_EQ(*s->LastEventId(), *last);
  // A wiped volume: a new instance, and ids above the old store's.
  std::filesystem::remove_all(s.dir());
  s.Reopen();
  EXPECT_NE(s->instance(), instance);
  ASSERT_TRUE(s->Commit(b).ok());
  EXPECT_GT(*s->LastEventId(), *last);
}

// Empties the WAL (the schema's creation wrote to it) through a connection
// of the test's own, so that its size shows only the commits that follow.
void TruncateWal(const std::string& path) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  // Read first: a connection learns the file is in WAL mode by reading it.
  EXPECT_EQ(sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr),
            SQLITE_OK);
  // SQLITE_BUSY while the store's checkpoint thread copies the schema's
  // frames (it holds the checkpoint lock): try again until it is done.
  EXPECT_TRUE(testutil::WaitUntil([&] {
    return sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr) ==
           SQLITE_OK;
  }));
  sqlite3_close(db);
}

// Commits `n` batches of one event; returns the largest WAL file seen.
uintmax_t CommitWatchingTheWal(TempStore& s, int n) {
  uintmax_t largest = 0;
  std::string wal = s->path() + "-wal";
  for (int i = 0; i < n; ++i) {
    ChangeBatch b;
    b.events = {Event("p" + std::to_string(i), 1000 + i)};
    EXPECT_TRUE(s->Commit(b).ok());
    std::error_code ec;
    uintmax_t size = std::filesystem::file_size(wal, ec);
    if (!ec) largest = std::max(largest, size);
  }
  return largest;
}

// A WAL of `pages` frames (SQLite's 32-byte header, 24 bytes per frame).
uintmax_t WalBytes(int pages) { return 32 + static_cast<uintmax_t>(pages) * (4096 + 24); }

TEST(StoreTest, CheckpointsRunOnTheirOwnThreadAndTheWalIsReused) {
  StoreOptions o;
  o.wal_checkpoint_pages = 16;
  TempStore s(o);
  ASSERT_TRUE(s->healthy());
  TruncateWal(s->path());
  uintmax_t largest = CommitWatchingTheWal(s, 300);
  // Checkpoints that copied pages into the database file ran on the thread
  // (the writer checkpoints only if the thread falls 4x behind)...
  ASSERT_TRUE(testutil::WaitUntil([&] { return s->background_checkpoints() > 0; }));
  // ...and the WAL was written from its start again and again: never longer
  // than the writer's limit and one commit, though the 300 commits wrote
  // 6 pages each.
  EXPECT_LE(largest, WalBytes(4 * 16 + 16));
  s.Reopen();
  auto events = s->Events({}, "", 1000);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->items.size(), 300u);
}

TEST(StoreTest, WithoutTheThreadTheCommitCheckpointsAtTheThreshold) {
  StoreOptions o;
  o.wal_checkpoint_pages = 16;
  o.background_checkpoints = false;
  TempStore s(o);
  ASSERT_TRUE(s->healthy());
  TruncateWal(s->path());
  uintmax_t largest = CommitWatchingTheWal(s, 300);
  EXPECT_EQ(s->background_checkpoints(), 0u);
  EXPECT_GT(s->writer_checkpoints(), 0u);
  // The threshold, and the commit that crossed it.
  EXPECT_LE(largest, WalBytes(16 + 16));
}

TEST(StoreTest, NewerSchemaIsRefusedNeverMigratedDown) {
  TempStore s;
  std::string path = s->path();
  ASSERT_EQ(SqliteExec(path, "PRAGMA user_version=" + std::to_string(kStoreSchemaVersion + 1)),
            SQLITE_OK);
  StoreOptions o;
  o.dir = s.dir();
  auto reopened = Store::Open(o);
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(reopened.status().message().find("newer"), std::string::npos);
}

// Version 3 -> 4: events of an earlier file keep printing (out_of_scope 0);
// the scope in force is a meta value written with a batch.
TEST(StoreTest, AVersion3FileGainsOutOfScopeEvents) {
  TempStore s;
  ChangeBatch before;
  before.events.push_back(Event("old", 1));
  ASSERT_TRUE(s->Commit(before).ok());
  ASSERT_EQ(SqliteExec(s->path(),
                       "ALTER TABLE events DROP COLUMN out_of_scope; "
                       "PRAGMA user_version=3"),
            SQLITE_OK);
  s.Reopen();
  ASSERT_TRUE(s->healthy());
  ChangeBatch after;
  after.events.push_back(Event("hidden", 2));
  after.events.back().out_of_scope = true;
  after.meta["scope"] = "{\"namespaces\":[\"team-*\"]}";
  ASSERT_TRUE(s->Commit(after).ok());
  auto events = s->EventsAfter(0, 10);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_FALSE((*events)[0].out_of_scope);
  EXPECT_TRUE((*events)[1].out_of_scope);
  EXPECT_EQ(*s->Meta("scope"), "{\"namespaces\":[\"team-*\"]}");
  EXPECT_EQ(*s->Meta("no-such-key"), "");
}

TEST(StoreTest, CorruptFileIsUnhealthyAndRecoversWhenMovedAway) {
  TempDir dir;
  std::ofstream(dir.dir() + "/ashiato.db") << std::string(8192, 'x');
  StoreOptions o;
  o.dir = dir.dir();
  auto s = Store::Open(o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_FALSE((*s)->healthy());
  EXPECT_NE((*s)->last_error().find("DataLoss"), std::string::npos) << (*s)->last_error();
  ChangeBatch b;
  b.events = {Event("a", 1)};
  EXPECT_EQ((*s)->Commit(b).code(), StatusCode::kUnavailable);
  EXPECT_FALSE((*s)->Probe().ok());
  // The operator moves the broken file aside: the store starts afresh.
  std::filesystem::rename(dir.dir() + "/ashiato.db", dir.dir() + "/ashiato.db.corrupt");
  EXPECT_TRUE((*s)->Probe().ok());
  EXPECT_TRUE((*s)->healthy());
  EXPECT_TRUE((*s)->Commit(b).ok());
}

TEST(StoreTest, IntervalsOpenCloseAndPage) {
  TempStore s;
  ChangeBatch b;
  b.intervals = {Placement("a", 100), Placement("b", 200), Placement("c", 300)};
  ASSERT_TRUE(s->Commit(b).ok());
  IntervalOp close = Placement("a", 0);
  close.action = IntervalOp::Action::kClose;
  close.to = 250;
  ChangeBatch c;
  c.intervals = {close};
  ASSERT_TRUE(s->Commit(c).ok());
  auto at = s->Placements("", "", "n1", 220, "", 10);
  ASSERT_TRUE(at.ok());
  ASSERT_EQ(at->items.size(), 2u);
  EXPECT_EQ(at->items[0].name, "b");  // Newest first.
  EXPECT_EQ(at->items[1].name, "a");
  EXPECT_EQ(*at->items[1].to, 250);
  auto p1 = s->Placements("", "", "", std::nullopt, "", 2);
  ASSERT_TRUE(p1.ok());
  ASSERT_EQ(p1->items.size(), 2u);
  ASSERT_FALSE(p1->next.empty());
  auto p2 = s->Placements("", "", "", std::nullopt, p1->next, 2);
  ASSERT_TRUE(p2.ok());
  ASSERT_EQ(p2->items.size(), 1u);
  EXPECT_EQ(p2->items[0].name, "a");
  EXPECT_TRUE(p2->next.empty());
  EXPECT_EQ(s->Placements("", "", "", std::nullopt, "12:x", 2).status().code(),
            StatusCode::kInvalidArgument);
  int overlapping = 0;
  ASSERT_TRUE(s->PlacementsOverlapping(260, 310, [&](Interval&&) { ++overlapping; }).ok());
  EXPECT_EQ(overlapping, 2);  // b and c; a ended at 250.
}

TEST(StoreTest, RetentionByAgeKeepsWhatTheLogHasNotWritten) {
  StoreOptions o;
  o.retention = std::chrono::seconds(10);
  o.retention_chunk = 3;
  TempStore s(o);
  const UnixMicros kSec = 1000000;
  ChangeBatch b;
  for (int i = 0; i < 10; ++i) b.events.push_back(Event("p" + std::to_string(i), i * kSec));
  b.intervals = {Placement("p0", 0, 2 * kSec), Placement("p9", 9 * kSec)};
  ASSERT_TRUE(s->Commit(b).ok());
  auto events = s->EventsAfter(0, 100);
  ASSERT_TRUE(events.ok());
  // The log wrote the first 7 lines only.
  ASSERT_TRUE(s->SetLogCursor((*events)[6].id).ok());
  auto r = s->EnforceRetention(25 * kSec);  // Cutoff 15 s: everything is old.
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->events_deleted, 7u);
  EXPECT_EQ(r->intervals_deleted, 1u);  // The open placement stays.
  EXPECT_FALSE(r->by_size);
  auto left = s->EventsAfter(0, 100);
  ASSERT_EQ(left->size(), 3u);
  EXPECT_EQ((*left)[0].line, "{\"pod_name\":\"p7\"}");
}

TEST(StoreTest, RetentionBySizeDeletesOldestFirst) {
  StoreOptions o;
  o.retention = std::chrono::milliseconds(0);
  o.retention_chunk = 100;
  TempStore s(o);
  for (int batch = 0; batch < 20; ++batch) {
    ChangeBatch b;
    for (int i = 0; i < 100; ++i) {
      EventRow e = Event("p" + std::to_string(batch * 100 + i), batch * 100 + i);
      e.line = "{\"pad\":\"" + std::string(1000, 'x') + "\"}";
      b.events.push_back(e);
    }
    ASSERT_TRUE(s->Commit(b).ok());
  }
  ASSERT_TRUE(s->SetLogCursor(*s->LastEventId()).ok());
  auto before = s->Size();
  ASSERT_TRUE(before.ok());
  ASSERT_GT(before->bytes, 2000u * 1000);
  s.options().retention_bytes = before->bytes / 2;
  s.Reopen();
  auto r = s->EnforceRetention(1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->by_size);
  auto after = s->Size();
  EXPECT_LE(after->bytes, before->bytes / 2);
  EXPECT_GT(*after->oldest_event, 0);
  // The newest events survive.
  auto page = s->Events({.name = "p1999"}, "", 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->items.size(), 1u);
}

// Retention runs every minute over a store of millions of rows: each of its
// deletes must find its rows through an index (a partial one since schema
// version 5), never by scanning a table.
TEST(StoreTest, RetentionDeletesSearchAnIndex) {
  TempStore s;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(s->path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  std::vector<const char*> deletes = {kRetentionSql.events, kRetentionSql.pods};
  for (const char* sql : kRetentionSql.intervals) deletes.push_back(sql);
  for (const char* sql : deletes) {
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, (std::string("EXPLAIN QUERY PLAN ") + sql).c_str(), -1, &st,
                                 nullptr),
              SQLITE_OK)
        << sql;
    std::string plan;
    while (sqlite3_step(st) == SQLITE_ROW) {
      plan += reinterpret_cast<const char*>(sqlite3_column_text(st, 3));
      plan += "; ";
    }
    sqlite3_finalize(st);
    EXPECT_EQ(plan.find("SCAN"), std::string::npos) << sql << "\n  plan: " << plan;
    EXPECT_NE(plan.find(" INDEX "), std::string::npos) << sql << "\n  plan: " << plan;
  }
  sqlite3_close(db);
}

TEST(StoreTest, SchemaIsReadableWithPlainSqlite) {
  // docs/storage.md promises users can query the file directly.
  TempStore s;
  ChangeBatch b;
  b.events = {Event("a", 5)};
  b.intervals = {Placement("a", 5)};
  ASSERT_TRUE(s->Commit(b).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(s->path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  int rows = 0;
  auto count = [](void* n, int, char**, char**) {
    ++*static_cast<int*>(n);
    return 0;
  };
  EXPECT_EQ(sqlite3_exec(db,
                         "SELECT e.id, e.event, p.node FROM events e JOIN placements p USING "
                         "(uid) WHERE p.to_us IS NULL",
                         count, &rows, nullptr),
            SQLITE_OK);
  EXPECT_EQ(rows, 1);
  sqlite3_close(db);
}

}  // namespace
}  // namespace ashiato
