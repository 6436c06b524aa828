#include "aggregator/store/downgrade.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>
#include <vector>

#include "aggregator/store/schema.h"
#include "aggregator/store/store.h"
#include "aggregator/test_util.h"

namespace ashiato {
namespace {

using testutil::Placement;
using testutil::TempDir;
using testutil::TempStore;

// The first column of every row of `sql`, as text.
std::vector<std::string> Column(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::vector<std::string> out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
      while (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char* t = sqlite3_column_text(st, 0);
        out.push_back(t ? reinterpret_cast<const char*>(t) : "");
      }
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

std::string Version(const std::string& path) {
  auto v = Column(path, "PRAGMA user_version");
  return v.empty() ? "" : v[0];
}

std::vector<std::string> Indexes(const std::string& path) {
  // The indexes versions 4 and 5 differ in.
  return Column(path,
                "SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ("
                "'pods_by_deleted', 'placements_by_to', 'ip_leases_by_to', 'image_usage_by_to', "
                "'pods_tombstones', 'placements_ended', 'ip_leases_ended', 'image_usage_ended') "
                "ORDER BY name");
}

PodRow Tombstone(const std::string& uid, UnixMicros when) {
  PodRow p;
  p.uid = uid;
  p.namespace_ = "default";
  p.name = uid;
  p.node = "n1";
  p.observed_by = "n1";
  p.epoch = "e";
  p.deleted = true;
  p.last_change = when;
  p.record = "{}";
  return p;
}

// Version 5 -> 4 -> 5 (a rollback, then the upgrade again) keeps every row,
// and retention still finds what it deletes in the indexes of either.
TEST(DowngradeStoreTest, ToVersion4AndBackKeepsEveryRow) {
  StoreOptions o;
  o.retention = std::chrono::seconds(10);
  TempStore s(o);
  const UnixMicros kSec = 1000000;
  ChangeBatch b;
  b.intervals = {Placement("ended", 0, 2 * kSec), Placement("running", kSec, 0)};
  b.pods = {Tombstone("gone", 2 * kSec)};
  ASSERT_TRUE(s->Commit(b).ok());
  std::string file = s.dir() + "/ashiato.db";
  EXPECT_EQ(Version(file), "5");
  EXPECT_EQ(Indexes(file), (std::vector<std::string>{"image_usage_ended", "ip_leases_ended",
                                                     "placements_ended", "pods_tombstones"}));

  // docs/storage.md runs it beside the serving aggregator, just before the
  // rollback replaces it: that aggregator keeps committing meanwhile.
  ASSERT_TRUE(DowngradeStore(s.dir(), 4).ok());
  ChangeBatch after;
  after.intervals = {Placement("later", 3 * kSec, 4 * kSec)};
  ASSERT_TRUE(s->Commit(after).ok());
  s.Close();
  EXPECT_EQ(Version(file), "4");
  EXPECT_EQ(Indexes(file), (std::vector<std::string>{"image_usage_by_to", "ip_leases_by_to",
                                                     "placements_by_to", "pods_by_deleted"}));
  EXPECT_TRUE(DowngradeStore(s.dir(), 4).ok());  // Already there: nothing to do.
  EXPECT_EQ(Column(file, "SELECT count(*) FROM placements"), std::vector<std::string>{"3"});

  s.Reopen();  // The newer aggregator again: migrated up.
  ASSERT_NE(s.get(), nullptr);
  EXPECT_EQ(Version(file), "5");
  EXPECT_EQ(Indexes(file), (std::vector<std::string>{"image_usage_ended", "ip_leases_ended",
                                                     "placements_ended", "pods_tombstones"}));
  auto r = s->EnforceRetention(20 * kSec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->intervals_deleted, 2u);  // The ended placements; the running one stays.
  EXPECT_EQ(r->pods_deleted, 1u);
  EXPECT_EQ(Column(file, "SELECT uid FROM placements"), std::vector<std::string>{"uid-running"});
}

// Every version says whether it can be taken back (nullptr: it cannot).
TEST(DowngradeStoreTest, EveryMigrationHasADowngradeEntry) {
  EXPECT_EQ(kStoreDowngrades.size(), kStoreMigrations.size());
  EXPECT_EQ(kStoreMigrations.size(), static_cast<size_t>(kStoreSchemaVersion));
}

TEST(DowngradeStoreTest, RefusesWhatItCannotDoAndChangesNothing) {
  TempStore s;
  s.Close();
  std::string file = s.dir() + "/ashiato.db";
  // 4 -> 3 would drop a column (events.out_of_scope): not offered.
  Status st = DowngradeStore(s.dir(), 3);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("version 4 cannot be taken back to 3"), std::string::npos)
      << st.message();
  EXPECT_EQ(Version(file), "5");  // Not even the 5 -> 4 step was applied.
  EXPECT_EQ(DowngradeStore(s.dir(), kStoreSchemaVersion + 1).code(),
            StatusCode::kFailedPrecondition);
  TempDir empty;
  EXPECT_EQ(DowngradeStore(empty.dir(), 4).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace ashiato
