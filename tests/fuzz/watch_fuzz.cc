// The watch-event stream the agent reads from the API server: line
// splitting as HttpClient::StreamLines does it, each line parsed as
// KubeClient::Watch does, then Reflector's event handling (ERROR Status
// objects, BOOKMARKs, 410 → relist, pods via PodRecordFromPodJson) and the
// agent's PodStore change detection.
//
// Input: the first line is the LIST response body; the following lines are
// watch stream lines; a line "--" ends one watch connection (the next watch
// call gets the lines after it).
//
// Invariants: the reflector stops when asked; every pod handed to the agent
// has a uid; a pod record survives the log-line round trip
// (PodRecordFromLogJson(PodRecordToLogJson(p))); PodStore's size stays the
// number of distinct UIDs it was told exist.
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <set>

#include "agent/pod_store.h"
#include "agent/reflector.h"
#include "tests/fuzz/fuzz.h"

namespace ashiato {
namespace {

using nlohmann::json;

void CheckRecord(const PodRecord& p) {
  FUZZ_CHECK(!p.uid.empty(), "a pod without uid reached the handler");
  PodRecord back = PodRecordFromLogJson(PodRecordToLogJson(p));
  PodRecord want = p;
  // The log line writes "owner": null when kind and name are empty.
  if (want.owner_kind.empty() && want.owner_name.empty()) want.owner_inferred = false;
  FUZZ_CHECK(back.SameObservableState(want) && back.resource_version == want.resource_version,
             "log json round trip changed " + PodRecordToLogJson(p).dump());
}

class Handler : public ReflectorHandler {
 public:
  void OnList(const std::vector<PodRecord>& pods) override {
    std::set<std::string> uids;
    for (const auto& p : pods) {
      CheckRecord(p);
      uids.insert(p.uid);
    }
    store_.Replace(pods, first_);
    first_ = false;
    FUZZ_CHECK(store_.size() == uids.size(), "PodStore size after Replace");
  }
  void OnWatchEvent(const std::string& type, const PodRecord& pod) override {
    FUZZ_CHECK(type == "ADDED" || type == "MODIFIED" || type == "DELETED", type);
    CheckRecord(pod);
    size_t before = store_.size();
    auto change = store_.Apply(type, pod);
    if (change) CheckRecord(change->record);
    if (type == "DELETED") {
      FUZZ_CHECK(store_.size() <= before, "DELETED grew the store");
    } else {
      FUZZ_CHECK(store_.size() >= before, "ADDED/MODIFIED shrank the store");
    }
    (void)store_.All();
  }

 private:
  PodStore store_;
  bool first_ = true;
};

class ScriptedApi : public PodApi {
 public:
  explicit ScriptedApi(std::string_view input) {
    list_ = std::string(fuzz::SplitOnce(&input, '\n'));
    rest_ = input;
  }
  void set_reflector(Reflector* r) { reflector_ = r; }

  Result<json> Get(const std::string&) override {
    if (++gets_ > 3) {  // Enough relists.
      reflector_->Stop();
      return Status(StatusCode::kCancelled, "stopped");
    }
    json list = json::parse(list_, nullptr, /*allow_exceptions=*/false);
    if (list.is_discarded()) {
      reflector_->Stop();
      return Internal("not JSON");
    }
    // A list the reflector would retry after a backoff: stop instead.
    const json& items = list.is_object() && list.contains("items") ? list["items"] : json();
    const json& meta = list.is_object() && list.contains("metadata") ? list["metadata"] : json();
    bool rv = meta.is_object() && meta.contains("resourceVersion") &&
              meta["resourceVersion"].is_string() && !meta["resourceVersion"].empty();
    if (!list.is_object() || !(items.is_array() || items.is_null()) || !rv) reflector_->Stop();
    return list;
  }

  Status Watch(const std::string&, const std::function<bool(const json& event)>& on_event,
               std::chrono::milliseconds) override {
    // One connection: lines up to "--" or the end, split as HttpClient does.
    size_t events = 0;
    bool stopped_by_handler = false;
    bool expired = false;
    while (!rest_.empty()) {
      std::string_view line = fuzz::SplitOnce(&rest_, '\n');
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line == "--") break;
      if (line.empty()) continue;
      json event = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!event.is_object()) {
        reflector_->Stop();  // KubeClient::Watch fails; the reflector would back off.
        return Internal("event is not a JSON object");
      }
      ++events;
      if (!on_event(event)) {
        stopped_by_handler = true;
        const json& object = event.contains("object") ? event["object"] : json();
        expired = event.value("type", json()) == "ERROR" && object.is_object() &&
                  object.contains("code") && object["code"].is_number_integer() &&
                  object["code"] == 410;
        break;
      }
    }
    // Keep going only where the reflector goes on without sleeping: a
    // clean end after some events, or a first 410 (relist).
    bool go_on =
        !rest_.empty() && ((!stopped_by_handler && events > 0) || (expired && !last_expired_));
    last_expired_ = expired;
    if (!go_on) reflector_->Stop();
    return Status::Ok();
  }

  void Cancel() override {}

 private:
  std::string list_;
  std::string_view rest_;
  Reflector* reflector_ = nullptr;
  int gets_ = 0;
  bool last_expired_ = false;
};

}  // namespace
}  // namespace ashiato

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ashiato;
  std::string input(fuzz::AsText(data, size));
  ScriptedApi api(input);
  Handler handler;
  ReflectorOptions options;
  options.node = "node-1";
  options.seed = 1;
  options.watch_timeout_min_seconds = 1;
  options.watch_timeout_max_seconds = 1;
  options.backoff = BackoffOptions{std::chrono::milliseconds(0), std::chrono::milliseconds(0), 1.0,
                                   std::chrono::milliseconds(60000)};
  Reflector reflector(options, &api, &handler);
  api.set_reflector(&reflector);
  Status s = reflector.Run();
  FUZZ_CHECK(s.ok(), s.ToString());
  return 0;
}
