// Helpers shared by the aggregator's unit tests.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "aggregator/store/store.h"
#include "common/pod_record.h"
#include "common/report.h"
#include "common/time_util.h"

namespace ashiato::testutil {

class FakeClock : public Clock {
 public:
  SystemTime Now() const override { return now; }
  SystemTime now = SystemTime(std::chrono::seconds(1795000000));
};

// A FILE* whose contents can be read back as lines.
class LogCapture {
 public:
  LogCapture() { file_ = open_memstream(&buf_, &size_); }
  ~LogCapture() {
    std::fclose(file_);
    std::free(buf_);
  }
  std::FILE* file() { return file_; }
  std::vector<nlohmann::json> Lines() {
    std::fflush(file_);
    std::vector<nlohmann::json> out;
    std::istringstream in(std::string(buf_, size_));
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    }
    return out;
  }
  // Every line as text (for outputs that are not JSON).
  std::vector<std::string> RawLines() {
    std::fflush(file_);
    std::vector<std::string> out;
    std::istringstream in(std::string(buf_, size_));
    std::string line;
    while (std::getline(in, line)) out.push_back(line);
    return out;
  }
  std::vector<std::string> Events() {
    std::vector<std::string> out;
    for (const auto& j : Lines()) {
      out.push_back(j["event"].get<std::string>() + " " + j["namespace"].get<std::string>() + "/" +
                    j["pod_name"].get<std::string>());
    }
    return out;
  }

 private:
  char* buf_ = nullptr;
  size_t size_ = 0;
  std::FILE* file_;
};

// A fresh temporary directory, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    char dir[] = "/tmp/ashiato-test-XXXXXX";
    dir_ = mkdtemp(dir) ? dir : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// Opens a placement of pod `name` (uid "uid-<name>") on n1; `to` > 0 closes it too.
inline IntervalOp Placement(const std::string& name, UnixMicros from, UnixMicros to = 0) {
  IntervalOp op;
  op.kind = IntervalOp::Kind::kPlacement;
  op.uid = "uid-" + name;
  op.namespace_ = "default";
  op.name = name;
  op.node = "n1";
  op.from = from;
  op.to = to;
  return op;
}

// A store in a fresh temporary directory, removed at the end.
class TempStore {
 public:
  explicit TempStore(StoreOptions options = {}) : options_(std::move(options)) {
    options_.dir = dir_.dir();
    Reopen();
  }
  ~TempStore() { store_.reset(); }  // Before dir_ goes.
  // Closes and opens the store again (a restart on the same volume).
  void Reopen() {
    store_.reset();
    auto s = Store::Open(options_);
    if (s.ok()) store_ = std::move(s.value());
  }
  // Closes the store (a stopped aggregator) until Reopen().
  void Close() { store_.reset(); }
  Store* get() { return store_.get(); }
  Store* operator->() { return store_.get(); }
  const std::string& dir() const { return dir_.dir(); }
  StoreOptions& options() { return options_; }

 private:
  TempDir dir_;
  StoreOptions options_;
  std::unique_ptr<Store> store_;
};

// The unified log lines a store received after this object was made.
class StoreLog {
 public:
  explicit StoreLog(Store* store) : store_(store) {
    auto last = store->LastEventId();
    start_ = last.ok() ? *last : 0;
  }
  std::vector<nlohmann::json> Lines() {
    std::vector<nlohmann::json> out;
    auto events = store_->EventsAfter(start_, 1000000);
    if (!events.ok()) return out;
    for (const auto& e : *events) out.push_back(nlohmann::json::parse(e.line));
    return out;
  }
  std::vector<std::string> Events() {
    std::vector<std::string> out;
    for (const auto& j : Lines()) {
      out.push_back(j["event"].get<std::string>() + " " + j["namespace"].get<std::string>() + "/" +
                    j["pod_name"].get<std::string>());
    }
    return out;
  }
  // Events() of the lines the log writer prints (in scope, not replayed).
  std::vector<std::string> Printed() {
    std::vector<std::string> out;
    auto events = store_->EventsAfter(start_, 1000000);
    if (!events.ok()) return out;
    for (const auto& e : *events) {
      if (e.out_of_scope || e.replayed) continue;
      auto j = nlohmann::json::parse(e.line);
      out.push_back(e.event + " " + j["namespace"].get<std::string>() + "/" +
                    j["pod_name"].get<std::string>());
    }
    return out;
  }

 private:
  Store* store_;
  int64_t start_ = 0;
};

inline PodRecord Pod(const std::string& name, const std::string& node, const std::string& rv,
                     const std::string& ip = "", const std::string& phase = "Running") {
  PodRecord p;
  p.uid = "uid-" + name;
  p.namespace_ = "default";
  p.name = name;
  p.node_name = node;
  p.pod_ip = ip;
  if (!ip.empty()) p.pod_ips = {ip};
  p.phase = phase;
  p.resource_version = rv;
  p.containers = {{"app", "nginx:1.27", "docker.io/library/nginx@sha256:abc"}};
  p.labels = {{"app", name}};
  p.creation_timestamp = "2026-11-24T03:00:00Z";
  return p;
}

inline Report MakeReport(const std::string& node, const std::string& epoch, uint64_t seq,
                         std::vector<ReportRecord> records, bool snapshot = false) {
  Report r;
  r.node = node;
  r.epoch = epoch;
  r.seq = seq;
  r.snapshot = snapshot;
  r.records = std::move(records);
  return r;
}

// Polls `predicate` every millisecond for up to 10 s; whether it held.
inline bool WaitUntil(const std::function<bool()>& predicate) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

inline ReportRecord Up(PodRecord p, int64_t t = 0) { return {RecordOp::kUpsert, std::move(p), t}; }
inline ReportRecord Del(PodRecord p, int64_t t = 0) { return {RecordOp::kDelete, std::move(p), t}; }

}  // namespace ashiato::testutil
