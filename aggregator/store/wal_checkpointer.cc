#include "aggregator/store/wal_checkpointer.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "aggregator/store/sqlite_stmt.h"

namespace ashiato {
namespace {

int WalHook(void* self, sqlite3* db, const char* db_name, int frames) {
  static_cast<WalCheckpointer*>(self)->OnCommit(db, db_name, frames);
  return SQLITE_OK;
}

}  // namespace

WalCheckpointer::WalCheckpointer(WalCheckpointerOptions options) : options_(std::move(options)) {
  if (options_.background) thread_ = std::thread([this] { Run(); });
}

WalCheckpointer::~WalCheckpointer() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (db_) sqlite3_close_v2(db_);
}

void WalCheckpointer::Attach(sqlite3* writer) { sqlite3_wal_hook(writer, &WalHook, this); }

void WalCheckpointer::OnCommit(sqlite3* writer, const char* db_name, int frames) {
  if (frames < options_.pages) return;
  if (options_.background && frames < options_.pages * options_.backstop_factor) {
    {
      std::lock_guard<std::mutex> l(mu_);
      wanted_ = true;
    }
    cv_.notify_one();
    return;
  }
  // No thread, or it fell behind: checkpoint here, as SQLite's automatic
  // checkpoint does (inside the WAL hook, after the commit is durable),
  // once the thread's pass is over (SQLite would answer BUSY meanwhile).
  std::lock_guard<std::mutex> one_at_a_time(checkpoint_mu_);
  int rc = sqlite3_wal_checkpoint_v2(writer, db_name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  if (rc != SQLITE_OK) return;
  ++by_writer_;
  if (options_.on_checkpoint) options_.on_checkpoint(false);
}

void WalCheckpointer::Reset() {
  {
    std::lock_guard<std::mutex> l(mu_);
    ++generation_;
    wanted_ = true;  // Let go of an earlier file now, not at the next threshold.
  }
  cv_.notify_one();
}

void WalCheckpointer::Run() {
  bool failed = false;
  while (true) {
    std::unique_lock<std::mutex> l(mu_);
    // After a failure, not before a second has passed (a failing disk).
    if (failed) cv_.wait_for(l, std::chrono::seconds(1), [this] { return stop_; });
    cv_.wait(l, [this] { return wanted_ || stop_; });
    if (stop_) return;
    wanted_ = false;
    l.unlock();
    failed = !CheckpointOnce();
  }
}

bool WalCheckpointer::CheckpointOnce() {
  uint64_t generation;
  {
    std::lock_guard<std::mutex> l(mu_);
    generation = generation_;
  }
  if (db_ && db_generation_ != generation) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }
  Status st;
  if (!db_) {
    int rc = sqlite3_open_v2(options_.path.c_str(), &db_,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc == SQLITE_OK) {
      db_generation_ = generation;
      // The checkpoint syncs as the writer's commits do.
      st = Exec(db_, options_.sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
      // A connection learns that the file is in WAL mode when it first
      // reads it; until then a checkpoint is a no-op that returns OK.
      Stmt mode(db_, "PRAGMA journal_mode");
      if (st.ok() && (mode.Step() != SQLITE_ROW || mode.Text(0) != "wal")) {
        st = Internal("store: checkpoint connection: " + options_.path + " is not in WAL mode");
      }
    } else {
      st = SqliteStatus(db_, rc, "store: open checkpoint connection");
    }
  }
  if (st.ok()) {
    // Passes until the WAL is copied whole (commits may append meanwhile):
    // only then does the next commit write the WAL from its start again.
    for (int pass = 0; pass < 8; ++pass) {
      int frames = 0, copied = 0, rc;
      {
        std::lock_guard<std::mutex> one_at_a_time(checkpoint_mu_);
        rc = sqlite3_wal_checkpoint_v2(db_, "main", SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);
      }
      if (rc != SQLITE_OK) {
        st = SqliteStatus(db_, rc, "store: checkpoint");
        break;
      }
      if (copied > 0) {
        ++background_;
        if (options_.on_checkpoint) options_.on_checkpoint(true);
      }
      if (copied >= frames) {
        last_error_.clear();
        return true;
      }
    }
    if (st.ok()) return true;  // Readers hold the rest; the next commit asks again.
  }
  // The writer sees a failing disk through its own commits; say it once here.
  if (st.ToString() != last_error_) {
    last_error_ = st.ToString();
    spdlog::warn("{} (the writer checkpoints once the WAL is {} pages)", last_error_,
                 options_.pages * options_.backstop_factor);
  }
  if (db_) sqlite3_close_v2(db_);
  db_ = nullptr;
  return false;
}

}  // namespace ashiato
