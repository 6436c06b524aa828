// LogWriter: prints the unified log from the store, on its own thread, and
// persists how far it got (the store's log cursor). A stalled stdout (a log
// shipper that stopped reading, a full log disk) then blocks neither ingest,
// nor queries, nor health: lines wait in the store and are written when
// stdout drains; after a restart, writing resumes after the cursor.
//
// Every line carries the event's store id ("id"), unique and increasing, so
// a consumer can drop the lines a crash between a write and the cursor's
// commit repeats (at most one batch, docs/protocol.md).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "aggregator/metrics.h"
#include "aggregator/store/store.h"
#include "common/live_config.h"

namespace ashiato {

// Where IMAGE_ADDED / IMAGE_REMOVED go (--image-log, docs/images.md).
enum class ImageLogFormat {
  kJson,  // In the unified JSON log (stdout).
  kText,  // As "[+|image]  nginx:1.27  [ns|pod]" lines on the text output only.
  kBoth,
};

struct LogWriterOptions {
  // Lines read from the store per round.
  size_t batch = 1000;
  // How often the store is polled when nothing notified the writer.
  std::chrono::milliseconds poll{1000};
  ImageLogFormat image_log = ImageLogFormat::kJson;
  // --cluster-name: a "cluster" field after "id" on every line ("" = none).
  std::string cluster;
  // JSON lines, or text (aggregator/log_text.h); SetFormat changes it live.
  LogFormat format = LogFormat::kJson;
};

class LogWriter {
 public:
  // `out` may be a pipe, file or terminal; `text_out` (image events as
  // text, when options.image_log asks for them; stderr in the binary) and
  // `metrics` may be null.
  LogWriter(LogWriterOptions options, Store* store, std::FILE* out, AggregatorMetrics* metrics,
            std::FILE* text_out = nullptr);
  // "[+|image]  nginx:1.27  [namespace|pod]" for an IMAGE_* line; "" for others.
  static std::string ImageTextLine(const StoredEvent& e);
  ~LogWriter();

  void Start();
  // New lines were committed.
  void Notify();
  // The live configuration's logFormat: lines written from now on use it.
  void SetFormat(LogFormat format) { text_.store(format == LogFormat::kText); }
  // Writes what is committed, waiting at most `deadline` (a stalled stdout
  // may not drain), then stops the thread.
  void Stop(std::chrono::milliseconds deadline);
  // Waits until every line committed so far is written; false on timeout.
  bool WaitCaughtUp(std::chrono::milliseconds deadline);
  int64_t cursor() const;

 private:
  void Run();
  // Writes all of `data`, giving up when stopping; false if it gave up.
  bool WriteAll(const std::string& data);

  LogWriterOptions options_;
  Store* store_;
  std::FILE* out_;
  AggregatorMetrics* metrics_;
  std::FILE* text_out_;
  std::atomic<bool> text_{false};  // Unified log lines as text.

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
  bool stop_ = false;
  std::chrono::steady_clock::time_point stop_deadline_{};
  int64_t cursor_ = 0;
  int64_t target_ = 0;  // The last id known committed (for WaitCaughtUp).
  std::thread thread_;
};

}  // namespace ashiato
