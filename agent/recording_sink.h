// RecordingSink: an EventSink for tests that keeps every call.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "agent/event_sink.h"

namespace ashiato {

class RecordingSink : public EventSink {
 public:
  void OnEvent(const std::string& type, const PodRecord& record) override {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(type + " " + record.name);
    records_.push_back(record);
  }
  void OnSnapshot(const std::vector<PodRecord>& all) override {
    std::lock_guard<std::mutex> lock(mu_);
    snapshots_.push_back(all.size());
  }
  void OnLogAll(const std::vector<PodRecord>& all) override {
    std::lock_guard<std::mutex> lock(mu_);
    log_all_.push_back(all.size());
  }
  Status Flush(std::chrono::milliseconds) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++flushes_;
    return Status::Ok();
  }
  // "CREATED web-1", ...
  std::vector<std::string> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  std::vector<PodRecord> records() {
    std::lock_guard<std::mutex> lock(mu_);
    return records_;
  }
  std::vector<size_t> snapshots() {
    std::lock_guard<std::mutex> lock(mu_);
    return snapshots_;
  }
  // Sizes of the views passed to OnLogAll, in order.
  std::vector<size_t> log_all() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_all_;
  }
  int flushes() {
    std::lock_guard<std::mutex> lock(mu_);
    return flushes_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> events_;
  std::vector<PodRecord> records_;
  std::vector<size_t> snapshots_;
  std::vector<size_t> log_all_;
  int flushes_ = 0;
};

}  // namespace ashiato
