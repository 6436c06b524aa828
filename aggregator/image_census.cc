#include "aggregator/image_census.h"

#include <nlohmann/json.hpp>

namespace ashiato {

std::string ImageCensus::DigestOf(const std::string& image_id) {
  size_t at = image_id.find("sha256:");
  if (at == std::string::npos) return "";
  return image_id.substr(at);
}

std::set<ImageCensus::Key> ImageCensus::RunningImagesOf(const PodRecord& pod) {
  std::set<Key> out;
  if (pod.phase == "Succeeded" || pod.phase == "Failed") return out;
  for (const auto& c : pod.containers) {
    if (c.image.empty() || c.image_id.empty()) continue;
    out.insert({c.image, DigestOf(c.image_id)});
  }
  return out;
}

void ImageCensus::Clear() { usage_.clear(); }

void ImageCensus::Restore(const PodRecord& pod) {
  for (const Key& k : RunningImagesOf(pod)) Add(k);
}

size_t ImageCensus::pods(const Key& key) const {
  auto it = usage_.find(key);
  return it == usage_.end() ? 0 : it->second;
}

void ImageCensus::Add(const Key& key) { ++usage_[key]; }

bool ImageCensus::Remove(const Key& key) {
  auto it = usage_.find(key);
  if (it == usage_.end()) return false;  // Not counted: nothing to undo.
  if (--it->second > 0) return false;
  usage_.erase(it);
  return true;
}

void ImageCensus::Apply(const PodRecord* before, const PodRecord* after, const CensusContext& ctx,
                        ChangeBatch* batch) {
  std::set<Key> was = before ? RunningImagesOf(*before) : std::set<Key>{};
  std::set<Key> now = after ? RunningImagesOf(*after) : std::set<Key>{};
  const std::string& node_was = before ? before->node_name : std::string();
  const std::string& node_now = after ? after->node_name : std::string();
  bool moved = before && after && node_was != node_now;
  for (const Key& k : was) {
    if (now.count(k) && !moved) continue;
    if (Remove(k)) EmitLine("IMAGE_REMOVED", k, *before, ctx, batch);
  }
  for (const Key& k : now) {
    if (was.count(k) && !moved) continue;
    bool first = pods(k) == 0;
    Add(k);
    if (first) EmitLine("IMAGE_ADDED", k, *after, ctx, batch);
  }
}

void ImageCensus::EmitLine(const char* event, const Key& key, const PodRecord& pod,
                           const CensusContext& ctx, ChangeBatch* batch) const {
  size_t pods = this->pods(key);
  size_t nodes = pods > 0 ? 1 : 0;  // The first pod's node, or none after the last.
  nlohmann::json j = {{"aggregated_at", ctx.now_text},
                      {"event", event},
                      {"timestamp", ctx.when_text},
                      {"image", key.first},
                      {"digest", key.second},
                      {"namespace", pod.namespace_},
                      {"pod_name", pod.name},
                      {"uid", pod.uid},
                      {"node_name", pod.node_name},
                      {"observed_by", ctx.observed_by},
                      {"pods", pods},
                      {"nodes", nodes}};
  if (ctx.replayed) j["replayed"] = true;
  EventRow row;
  row.event = event;
  row.ts = ctx.when_us;
  row.aggregated = ctx.now_us;
  row.uid = pod.uid;
  row.namespace_ = pod.namespace_;
  row.name = pod.name;
  row.node = pod.node_name;
  row.observed_by = ctx.observed_by;
  row.line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  row.replayed = ctx.replayed;
  batch->events.push_back(std::move(row));
}

}  // namespace ashiato
