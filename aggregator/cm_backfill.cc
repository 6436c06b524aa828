#include "aggregator/cm_backfill.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace ashiato {
namespace {

UnixMicros Micros(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

}  // namespace

ConfigMapBackfill::ConfigMapBackfill(Store* store, HourlyConfigMapWriter* writer,
                                     const Clock* clock)
    : store_(store), writer_(writer), clock_(clock) {}

ConfigMapBackfill::~ConfigMapBackfill() { Stop(); }

void ConfigMapBackfill::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void ConfigMapBackfill::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void ConfigMapBackfill::Run() {
  HourIndex now = HourOf(clock_->Now());
  HourIndex oldest = writer_->OldestRetainedHour();
  // Without an age limit, the store's oldest event bounds what can be rebuilt.
  auto size = store_->Size();
  if (size.ok() && size->oldest_event) {
    HourIndex first = HourOf(SystemTime(std::chrono::microseconds(*size->oldest_event)));
    oldest = std::max(oldest, first);
  } else {
    oldest = std::max(oldest, now);
  }
  int hours = 0;
  size_t entries_total = 0;
  for (HourIndex h = now; h >= oldest && !stop_; --h) {
    std::vector<std::pair<UnixMicros, BackfillEntry>> found;
    Status st = store_->PlacementsOverlapping(
        Micros(HourStart(h)), Micros(HourStart(h + 1)), [&](Interval&& iv) {
          if (keep_ && !keep_(iv)) return;
          found.push_back(
              {iv.from, {std::move(iv.namespace_), std::move(iv.name), std::move(iv.node)}});
        });
    if (!st.ok()) {
      spdlog::warn("configmaps: backfill of hour {} from the store failed: {}", HourLabel(h),
                   st.ToString());
      continue;
    }
    if (found.empty()) continue;
    // A pod that ran on several nodes in the hour: oldest placement first.
    std::stable_sort(found.begin(), found.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<BackfillEntry> entries;
    entries.reserve(found.size());
    for (auto& [from, e] : found) entries.push_back(std::move(e));
    entries_total += entries.size();
    writer_->Backfill(h, std::move(entries));
    ++hours;
    ++hours_done_;
    // Past hours are written and dropped from memory before the next one.
    if (h != now) {
      Status f = writer_->FlushNow();
      if (!f.ok()) spdlog::warn("configmaps: backfill flush: {}", f.ToString());
    }
  }
  spdlog::info("configmaps: backfilled {} hours ({} pod-hours) from the history store", hours,
               entries_total);
}

}  // namespace ashiato
