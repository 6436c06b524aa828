#include "aggregator/log_writer.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "aggregator/log_text.h"
#include "common/report.h"

namespace ashiato {

LogWriter::LogWriter(LogWriterOptions options, Store* store, std::FILE* out,
                     AggregatorMetrics* metrics, std::FILE* text_out)
    : options_(options),
      store_(store),
      out_(out),
      metrics_(metrics),
      text_out_(text_out),
      text_(options.format == LogFormat::kText) {}

std::string LogWriter::ImageTextLine(const StoredEvent& e) {
  bool added = e.event == "IMAGE_ADDED";
  if (!added && e.event != "IMAGE_REMOVED") return "";
  auto j = nlohmann::json::parse(e.line, nullptr, false);
  if (!j.is_object()) return "";
  auto str = [&](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  // cluster-image-logger's format, which its users grep for.
  return std::string(added ? "[+|image]  " : "[-|image]  ") + str("image") + "  [" +
         str("namespace") + "|" + str("pod_name") + "]\n";
}

LogWriter::~LogWriter() { Stop(std::chrono::seconds(0)); }

void LogWriter::Start() {
  std::lock_guard<std::mutex> l(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void LogWriter::Notify() {
  {
    std::lock_guard<std::mutex> l(mu_);
    notified_ = true;
  }
  cv_.notify_all();
}

void LogWriter::Stop(std::chrono::milliseconds deadline) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!thread_.joinable()) return;
    stop_ = true;
    stop_deadline_ = std::chrono::steady_clock::now() + deadline;
  }
  cv_.notify_all();
  thread_.join();
}

int64_t LogWriter::cursor() const {
  std::lock_guard<std::mutex> l(mu_);
  return cursor_;
}

bool LogWriter::WaitCaughtUp(std::chrono::milliseconds deadline) {
  auto last = store_->LastEventId();
  if (!last.ok()) return false;
  Notify();
  std::unique_lock<std::mutex> l(mu_);
  target_ = std::max(target_, *last);
  return cv_.wait_for(l, deadline, [&] { return cursor_ >= *last; });
}

bool LogWriter::WriteAll(const std::string& data) {
  int fd = fileno(out_);
  if (fd < 0) {  // A memory stream (tests): cannot block.
    std::fwrite(data.data(), 1, data.size(), out_);
    std::fflush(out_);
    return true;
  }
  std::fflush(out_);
  size_t done = 0;
  while (done < data.size()) {
    pollfd p{fd, POLLOUT, 0};
    int rc = ::poll(&p, 1, 200);
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stop_ && std::chrono::steady_clock::now() >= stop_deadline_) return false;
    }
    if (rc <= 0) continue;
    if (p.revents & (POLLERR | POLLNVAL)) {
      spdlog::error("unified log: stdout is closed; lines stay in the store");
      return false;
    }
    // At most PIPE_BUF at a time: a pipe that polls writable takes that
    // much without blocking, so a stalled reader cannot wedge Stop().
    size_t n = std::min<size_t>(data.size() - done, 4096);
    ssize_t w = ::write(fd, data.data() + done, n);
    if (w < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      spdlog::error("unified log: write failed: {}; lines stay in the store", std::strerror(errno));
      return false;
    }
    done += static_cast<size_t>(w);
  }
  return true;
}

void LogWriter::Run() {
  int64_t cursor = -1;
  std::string buf;
  std::string cluster;  // ,"cluster":"name" or "".
  if (!options_.cluster.empty()) {
    cluster = ",\"cluster\":";
    AppendJsonString(options_.cluster, &cluster);
  }
  bool more = false;  // The last round read a full batch: don't wait.
  while (true) {
    {
      std::unique_lock<std::mutex> l(mu_);
      if (!more && !stop_) {
        cv_.wait_for(l, options_.poll, [this] { return notified_ || stop_; });
      }
      notified_ = false;
      if (stop_ && std::chrono::steady_clock::now() >= stop_deadline_) break;
    }
    if (cursor < 0) {
      auto c = store_->LogCursor();
      if (!c.ok()) {
        spdlog::warn("unified log: cannot read the cursor: {}", c.status().ToString());
        if (stop_) break;
        continue;
      }
      cursor = *c;
      std::lock_guard<std::mutex> l(mu_);
      cursor_ = cursor;
    }
    auto events = store_->EventsAfter(cursor, options_.batch);
    if (!events.ok()) {
      spdlog::warn("unified log: cannot read the store: {}", events.status().ToString());
      more = false;
      std::lock_guard<std::mutex> l(mu_);
      if (stop_) break;
      continue;
    }
    if (events->empty()) {
      more = false;
      std::lock_guard<std::mutex> l(mu_);
      if (metrics_) metrics_->log_backlog->Set(0);
      if (stop_) break;
      continue;
    }
    buf.clear();
    std::string text;
    size_t printed = 0;
    bool json_images = options_.image_log != ImageLogFormat::kText;
    bool text_images = options_.image_log != ImageLogFormat::kJson && text_out_;
    for (const StoredEvent& e : *events) {
      if (e.replayed) continue;      // An earlier aggregator printed it.
      if (e.out_of_scope) continue;  // Outside the live configuration's scope.
      if (e.event.rfind("IMAGE_", 0) == 0) {
        if (text_images) text += ImageTextLine(e);
        if (!json_images) continue;
      }
      ++printed;
      if (text_.load()) {
        buf += UnifiedLogTextLine(e.id, options_.cluster, e.line);
        continue;
      }
      // {"id":N, then the stored line without its opening brace.
      buf += "{\"id\":";
      buf += std::to_string(e.id);
      buf += cluster;
      if (e.line.size() > 2) buf += ',';
      buf.append(e.line, 1, std::string::npos);
      buf += '\n';
    }
    if (!buf.empty() && !WriteAll(buf)) {
      more = false;
      std::lock_guard<std::mutex> l(mu_);
      if (stop_) break;
      continue;
    }
    if (!text.empty()) {
      // After the JSON lines, so a stalled stdout does not repeat them.
      std::fwrite(text.data(), 1, text.size(), text_out_);
      std::fflush(text_out_);
    }
    cursor = events->back().id;
    Status st = store_->SetLogCursor(cursor);
    if (!st.ok()) spdlog::warn("unified log: cursor not persisted: {}", st.ToString());
    more = events->size() == options_.batch;
    if (metrics_) {
      metrics_->log_lines_written->Increment(static_cast<double>(printed));
      metrics_->log_backlog->Set(more ? static_cast<double>(options_.batch) : 0);
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      cursor_ = cursor;
    }
    cv_.notify_all();
  }
}

}  // namespace ashiato
