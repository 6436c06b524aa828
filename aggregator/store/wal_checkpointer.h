// WalCheckpointer: copies the store's write-ahead log back into the database
// file on its own thread and SQLite connection, so that no commit waits for
// it. SQLite's automatic checkpoint runs inside the COMMIT that crosses its
// threshold: writing ~32 MB of pages back and two fsyncs stalled every report
// of that commit's group (the unified log's p99 at 200 changes/s was 55 ms
// with it, 2.5 ms without; docs/benchmarks.md). A PASSIVE checkpoint from
// another connection runs beside commits and readers (SQLite's WAL allows
// one checkpoint concurrently with one writer).
//
//   WalCheckpointer ckpt({.path = db_path, .pages = 8192});
//   sqlite3_wal_hook(writer, ..., &ckpt);  // Calls ckpt.OnCommit(db, frames).
//
// If it falls behind (the WAL reaches `backstop_factor` times the
// threshold, e.g. a slow disk), the writer checkpoints itself, as SQLite
// would: the WAL stays bounded either way.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace ashiato {

struct WalCheckpointerOptions {
  std::string path;  // The database file (not created if missing).
  // Frames in the WAL (pages written since the last checkpoint) that start one.
  int pages = 8192;
  // The writer checkpoints itself once the WAL is this many times `pages`.
  int backstop_factor = 4;
  bool sync_full = false;  // The store's synchronous=FULL.
  // false: no thread; the writer checkpoints at `pages`, as SQLite's own
  // automatic checkpoint does (tests, and a fallback).
  bool background = true;
  // After each checkpoint (metrics); `background` says which connection ran it.
  std::function<void(bool background)> on_checkpoint;
};

class WalCheckpointer {
 public:
  explicit WalCheckpointer(WalCheckpointerOptions options);
  ~WalCheckpointer();  // Stops the thread and closes its connection.
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // Installs OnCommit as `writer`'s WAL hook (replacing SQLite's automatic
  // checkpoint). The writer must be in WAL mode.
  void Attach(sqlite3* writer);
  // After each commit of the writer (its WAL hook): `frames` are in the WAL.
  void OnCommit(sqlite3* writer, const char* db_name, int frames);
  // The database file was reopened (moved away, replaced): the thread
  // closes its connection to the earlier file and checkpoints the new one.
  void Reset();

  uint64_t background_checkpoints() const { return background_.load(); }
  uint64_t writer_checkpoints() const { return by_writer_.load(); }

 private:
  void Run();
  // One PASSIVE checkpoint on the thread's connection (opened if needed);
  // false if it failed (not if busy).
  bool CheckpointOnce();

  const WalCheckpointerOptions options_;
  std::atomic<uint64_t> background_{0}, by_writer_{0};

  // Held during every checkpoint, the thread's and the writer's.
  std::mutex checkpoint_mu_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool wanted_ = false, stop_ = false;
  uint64_t generation_ = 0;  // Reset() counts up.

  // The thread's own (only its thread touches these).
  sqlite3* db_ = nullptr;
  uint64_t db_generation_ = 0;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace ashiato
