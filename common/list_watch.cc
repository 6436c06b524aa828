#include "common/list_watch.h"

#include <spdlog/spdlog.h>

#include "common/json_fields.h"

namespace ashiato {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

// Kubernetes watch events carry a Status object on ERROR; map its code the
// way StatusFromApiResponse maps an HTTP status.
Status StatusFromWatchError(const json& object) {
  ClientResponse r;
  r.status = object.is_object() && object.contains("code") && object["code"].is_number_integer()
                 ? object["code"].get<long>()
                 : 500;
  r.body = object.dump();
  Status s = StatusFromApiResponse(r);
  if (s.ok()) return Internal("watch ERROR event with code " + std::to_string(r.status));
  return s;
}

constexpr auto StringField = JsonStringField;

}  // namespace

bool IsResourceVersionUnavailable(const Status& status) {
  if (status.code() == StatusCode::kExpired) return true;
  return status.http_status() == 504 &&
         status.message().find("Too large resource version") != std::string::npos;
}

ListWatcher::ListWatcher(ListWatchOptions options, WatchApi* api, ListWatchHandler* handler)
    : options_(std::move(options)),
      api_(api),
      handler_(handler),
      backoff_(options_.backoff, options_.seed != 0 ? options_.seed : std::random_device{}()),
      rng_(options_.seed != 0 ? options_.seed + 1 : std::random_device{}()) {}

Status ListWatcher::ListOnce(bool quorum, std::string* resource_version,
                             const std::function<void(const json&)>& on_object) {
  return ListAt(quorum ? "" : "0", resource_version, on_object);
}

std::string ListWatcher::RelistResourceVersion() const {
  if (rv_unavailable_) return "";
  if (last_rv_.empty()) return options_.quorum_list ? "" : "0";
  return last_rv_;
}

Status ListWatcher::ListAt(const std::string& at, std::string* resource_version,
                           const std::function<void(const json&)>& on_object) {
  // Only a quorum list pages: with a resourceVersion and a limit the server
  // would answer at that exact RV from etcd, which is what relisting at an
  // RV avoids (the watch cache serves it only without a limit).
  const bool quorum = at.empty();
  std::string base = options_.path + "?" + options_.selector_query;
  if (base.back() != '?') base += "&";
  std::string cont;
  while (true) {
    std::string query = base;
    if (quorum) {
      query += "limit=" + std::to_string(options_.page_size);
      if (!cont.empty()) query += "&continue=" + UrlEncode(cont);
    } else {
      query += "resourceVersion=" + UrlEncode(at);
    }
    auto list = api_->Get(query);
    if (!list.ok()) return list.status();
    if (!list->is_object()) return Internal(options_.kind + " list is not a JSON object");
    const json& items = (*list)["items"];
    if (items.is_array()) {
      for (const auto& item : items) on_object(item);
    } else if (!items.is_null()) {
      return Internal(options_.kind + " list has no items array");
    }
    const json& meta = (*list)["metadata"];
    *resource_version = StringField(meta, "resourceVersion");
    cont = StringField(meta, "continue");
    if (!quorum || cont.empty()) break;
    if (stopped_) return Status(StatusCode::kCancelled, "stopped");
  }
  return Status::Ok();
}

bool ListWatcher::SleepUnlessStopped(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stopped_.load(); });
}

std::chrono::milliseconds ListWatcher::DelayFor(const Status& s) {
  auto d = backoff_.Next();
  auto retry_after = std::chrono::milliseconds(1000LL * s.retry_after_seconds());
  return std::max(d, retry_after);
}

void ListWatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }
  cv_.notify_all();
  api_->Cancel();
}

void ListWatcher::RequestRelist() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    relist_requested_ = true;
  }
  api_->Cancel();
}

bool ListWatcher::TakeRelistRequest() {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_ || !relist_requested_) return false;
  relist_requested_ = false;
  api_->Reset();
  return true;
}

Status ListWatcher::WatchOnce(int* events_seen) {
  int lo = options_.watch_timeout_min_seconds;
  int hi = std::max(lo, options_.watch_timeout_max_seconds);
  int timeout_seconds = std::uniform_int_distribution<int>(lo, hi)(rng_);
  std::string query = options_.path +
                      "?watch=1&allowWatchBookmarks=true&resourceVersion=" + UrlEncode(last_rv_) +
                      "&timeoutSeconds=" + std::to_string(timeout_seconds);
  if (!options_.selector_query.empty()) query += "&" + options_.selector_query;

  Status event_error;
  handler_->OnWatchState(true);
  Status s = api_->Watch(
      query,
      [&](const json& event) {
        std::string type = StringField(event, "type");
        const json& object = event.contains("object") ? event["object"] : json();
        ++*events_seen;
        if (type == "ERROR") {
          event_error = StatusFromWatchError(object);
          return false;
        }
        const json& meta = JsonField(object, "metadata");
        if (type == "BOOKMARK") {
          std::string rv = StringField(meta, "resourceVersion");
          if (!rv.empty()) last_rv_ = rv;
          return true;
        }
        if (type != "ADDED" && type != "MODIFIED" && type != "DELETED") return true;
        if (StringField(meta, "uid").empty()) return true;
        std::string rv = StringField(meta, "resourceVersion");
        if (!rv.empty()) last_rv_ = std::move(rv);
        handler_->OnWatchEvent(type, object);
        return !stopped_.load();
      },
      std::chrono::milliseconds(1000LL * (timeout_seconds + 30)));
  if (!event_error.ok()) return event_error;
  return s;
}

Status ListWatcher::Run() {
  bool need_list = true;
  int expired_in_a_row = 0;
  const std::string& kind = options_.kind;
  while (!stopped_) {
    if (need_list) {
      std::string at = RelistResourceVersion();
      std::string rv;
      size_t count = 0;
      handler_->OnListBegin();
      Status listed = ListAt(at, &rv, [&](const json& object) {
        ++count;
        handler_->OnListObject(object);
      });
      if (stopped_) break;
      if (!listed.ok() && TakeRelistRequest()) continue;  // Cancelled to list again.
      if (!listed.ok()) {
        handler_->OnApiError(listed);
        if (!at.empty() && at != "0" && IsResourceVersionUnavailable(listed)) {
          // The RV we relist at is gone (or ahead of this server's cache):
          // at once from etcd, as client-go does; later lists go back to RVs.
          spdlog::info("{} list at resourceVersion {} failed ({}); relisting from etcd", kind, at,
                       listed.message());
          rv_unavailable_ = true;
          continue;
        }
        // A quorum list that is 410 had a stale continue token: the next
        // attempt starts over (still quorum, rv_unavailable_ unchanged).
        spdlog::warn("{} list failed: {}", kind, listed.ToString());
        if (!SleepUnlessStopped(DelayFor(listed))) break;
        continue;
      }
      if (rv.empty()) {
        spdlog::warn("{} list has no resourceVersion; relisting", kind);
        if (!SleepUnlessStopped(DelayFor(Unavailable("no resourceVersion")))) break;
        continue;
      }
      spdlog::info("listed {} {}s at resourceVersion {} (asked for \"{}\")", count, kind, rv, at);
      handler_->OnListDone();
      last_rv_ = rv;
      rv_unavailable_ = false;
      need_list = false;
    }

    int events = 0;
    auto start = Clock::now();
    Status s = WatchOnce(&events);
    handler_->OnWatchState(false);
    if (stopped_) break;
    if (TakeRelistRequest()) {
      spdlog::info("{} watch ended to relist at resourceVersion {} (asked for)", kind, last_rv_);
      need_list = true;
      continue;
    }
    auto ran = Clock::now() - start;
    if (ran >= options_.healthy_after) backoff_.Reset();
    if (s.ok() && (events > 0 || ran >= std::chrono::seconds(1))) {
      spdlog::debug("{} watch ended after {} events; watching again from {}", kind, events,
                    last_rv_);
      expired_in_a_row = 0;
      handler_->OnWatchRestart();
      continue;
    }
    if (s.ok()) s = Unavailable("watch closed at once without events");
    handler_->OnApiError(s);
    if (s.code() == StatusCode::kExpired) {
      // Our resourceVersion is gone from the server's watch history. A list
      // at it is still fine (NotOlderThan: the cache answers with its newer
      // state), so relist there; see RelistResourceVersion. Back off only
      // if it repeats.
      spdlog::info("{} watch expired at resourceVersion {}: relisting ({})", kind, last_rv_,
                   s.message());
      need_list = true;
      handler_->OnRelist();
      if (!options_.relist_from_cache) rv_unavailable_ = true;
      if (++expired_in_a_row > 1 && !SleepUnlessStopped(DelayFor(s))) break;
      continue;
    }
    expired_in_a_row = 0;
    handler_->OnWatchRestart();
    auto delay = DelayFor(s);
    spdlog::warn("{} watch failed: {}; retrying in {} ms", kind, s.ToString(), delay.count());
    if (!SleepUnlessStopped(delay)) break;
  }
  return Status::Ok();
}

}  // namespace ashiato
