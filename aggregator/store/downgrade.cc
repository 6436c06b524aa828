#include "aggregator/store/downgrade.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <filesystem>

#include "aggregator/store/schema.h"
#include "aggregator/store/sqlite_stmt.h"
#include "aggregator/store/store.h"

namespace ashiato {
namespace {

Status DowngradeOpenFile(sqlite3* db, const std::string& path, int to_version) {
  auto read = SchemaVersion(db, path);
  if (!read.ok()) return read.status();
  const int version = *read;
  if (version == to_version) {
    spdlog::info("store {}: already at schema version {}", path, version);
    return Status::Ok();
  }
  if (version < to_version) {
    return FailedPrecondition("store " + path + " is at schema version " + std::to_string(version) +
                              ", older than " + std::to_string(to_version) +
                              ": start the aggregator to migrate up");
  }
  if (version > kStoreSchemaVersion) {
    return FailedPrecondition("store " + path + " was written with schema version " +
                              std::to_string(version) + ", newer than this aggregator's " +
                              std::to_string(kStoreSchemaVersion) +
                              ": downgrade it with the aggregator that wrote it");
  }
  for (int v = version; v > to_version; --v) {
    size_t step = static_cast<size_t>(v - 1);
    if (step >= kStoreDowngrades.size() || kStoreDowngrades[step] == nullptr) {
      return FailedPrecondition("store " + path + ": schema version " + std::to_string(v) +
                                " cannot be taken back to " + std::to_string(v - 1) +
                                " without losing data");
    }
  }
  if (Status st = Exec(db, "BEGIN IMMEDIATE"); !st.ok()) return st;
  Status st;
  for (int v = version; v > to_version && st.ok(); --v) {
    st = Exec(db, kStoreDowngrades[static_cast<size_t>(v - 1)]);
  }
  if (st.ok()) st = Exec(db, ("PRAGMA user_version=" + std::to_string(to_version)).c_str());
  if (st.ok()) st = Exec(db, "COMMIT");
  if (!st.ok()) {
    (void)Exec(db, "ROLLBACK");  // Best effort: the error above is what matters.
    return st;
  }
  spdlog::info("store {}: schema downgraded from version {} to {}", path, version, to_version);
  return Status::Ok();
}

}  // namespace

Status DowngradeStore(const std::string& dir, int to_version) {
  std::string path = (std::filesystem::path(dir) / "ashiato.db").string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return NotFound("store: no file " + path);
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  Status st = rc == SQLITE_OK ? Status::Ok() : SqliteStatus(db, rc, "store: open " + path);
  if (st.ok()) {
    sqlite3_busy_timeout(db, 5000);
    st = DowngradeOpenFile(db, path, to_version);
  }
  sqlite3_close_v2(db);
  return st;
}

}  // namespace ashiato
