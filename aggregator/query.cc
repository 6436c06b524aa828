#include "aggregator/query.h"

#include <cctype>
#include <nlohmann/json.hpp>
#include <set>

#include "aggregator/image_census.h"

namespace ashiato {
namespace {

using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

HttpResponse JsonOk(const json& j) { return HttpResponse::Json(200, Dump(j)); }

HttpResponse Fail(const Status& st) { return ErrorResponse(HttpStatusFor(st), st); }

UnixMicros Micros(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

std::string TimeText(UnixMicros us) {
  return FormatRfc3339Micros(SystemTime(std::chrono::microseconds(us)));
}

Result<std::optional<UnixMicros>> TimeParam(const HttpRequest& r, const std::string& key) {
  std::string v = r.Query(key);
  if (v.empty()) return std::optional<UnixMicros>();
  auto t = ParseRfc3339(v);
  if (!t) return InvalidArgument(key + ": expected an RFC 3339 time, got \"" + v + "\"");
  return std::optional<UnixMicros>(Micros(*t));
}

Result<size_t> LimitParam(const HttpRequest& r, const QueryOptions& o) {
  std::string l = r.Query("limit");
  if (l.empty()) return o.default_limit;
  char* end = nullptr;
  unsigned long long n = std::strtoull(l.c_str(), &end, 10);
  if (!std::isdigit(static_cast<unsigned char>(l[0])) || *end != '\0' || n == 0) {
    return InvalidArgument("limit: expected a positive integer");
  }
  return std::min<size_t>(n, o.max_limit);
}

// The events a unified line can be (docs/api.md); a filter naming another
// would match nothing, so it is refused as a typo.
Status CheckEventName(std::string_view event) {
  static constexpr std::string_view kEvents[] = {"SYNC",    "CREATED",     "UPDATED",
                                                 "DELETED", "IMAGE_ADDED", "IMAGE_REMOVED"};
  for (std::string_view known : kEvents) {
    if (event == known) return Status();
  }
  return InvalidArgument("event: \"" + std::string(event) +
                         "\" is not one of SYNC, CREATED, UPDATED, DELETED, IMAGE_ADDED, "
                         "IMAGE_REMOVED");
}

// A stored line with its id, as the log writer prints it.
std::string LineWithId(const StoredEvent& e) {
  std::string s = "{\"id\":" + std::to_string(e.id);
  if (e.line.size() > 2) s += ',';
  s.append(e.line, 1, std::string::npos);
  return s;
}

json IntervalJson(const Interval& iv) {
  json j = {{"namespace", iv.namespace_},
            {"pod_name", iv.name},
            {"uid", iv.uid},
            {"node_name", iv.node},
            {"from", TimeText(iv.from)},
            {"to", iv.to ? json(TimeText(*iv.to)) : json(nullptr)}};
  if (!iv.ip.empty()) j["ip"] = iv.ip;
  if (!iv.image.empty()) {
    j["container"] = iv.container;
    j["image"] = iv.image;
    j["image_id"] = iv.digest;
  }
  return j;
}

// With the node's addresses and topology when `nodes` knows the node (a
// deleted node's last ones included).
json IntervalsJson(const Page<Interval>& page, const NodeDirectory* nodes = nullptr) {
  json items = json::array();
  for (const auto& iv : page.items) {
    items.push_back(IntervalJson(iv));
    if (nodes) nodes->AddTo(iv.node, &items.back());
  }
  return items;
}

void AddContinue(json& out, const std::string& next) {
  if (!next.empty()) out["continue"] = next;
}

HttpResponse NamespaceForbidden(const std::string& ns) {
  return ErrorResponse(403, Status(StatusCode::kPermissionDenied,
                                   "you may not list pods in namespace \"" + ns + "\""));
}

}  // namespace

int HttpStatusFor(const Status& st) {
  switch (st.code()) {
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kConflict:
      return 409;
    case StatusCode::kResourceExhausted:
      return 413;
    case StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

HttpResponse ErrorResponse(int http_status, const Status& status) {
  json j = {{"error", status.message()}, {"code", StatusCodeName(status.code())}};
  HttpResponse r = HttpResponse::Json(http_status, Dump(j));
  if (http_status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  if (http_status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

QueryApi::QueryApi(QueryOptions options, ClusterState* state, Store* store)
    : options_(options), state_(state), store_(store) {}

HttpResponse QueryApi::Nodes(const Access& access) {
  if (!access.all) {
    return ErrorResponse(403, Status(StatusCode::kPermissionDenied,
                                     "/v1/nodes needs permission to list pods in all namespaces"));
  }
  return JsonOk(state_->Nodes());
}

HttpResponse QueryApi::Pods(const HttpRequest& req, const Access& access) {
  PodQuery q;
  q.node = req.Query("node");
  q.namespace_ = req.Query("namespace");
  if (!q.namespace_.empty() && !access.Allows(q.namespace_))
    return NamespaceForbidden(q.namespace_);
  q.namespaces = access.filter();
  q.ip = req.Query("ip");
  q.phase = req.Query("phase");
  q.after = req.Query("continue");
  auto sel = LabelSelector::Parse(req.Query("selector"));
  if (!sel.ok()) return ErrorResponse(400, sel.status());
  q.selector = std::move(sel.value());
  if (!req.Query("limit").empty()) {
    auto limit = LimitParam(req, options_);
    if (!limit.ok()) return Fail(limit.status());
    q.limit = *limit;
  }
  if (!req.Query("at").empty()) {
    // The past: placements from the store (who was where), not full states.
    return Placements(req, access);
  }
  return JsonOk(state_->Pods(q));
}

HttpResponse QueryApi::PodByName(const HttpRequest& req, const std::string& rest,
                                 const Access& access) {
  size_t slash = rest.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= rest.size() ||
      rest.find('/', slash + 1) != std::string::npos) {
    return ErrorResponse(404, NotFound("use /v1/pods/{namespace}/{name}"));
  }
  std::string ns = rest.substr(0, slash), name = rest.substr(slash + 1);
  if (!access.Allows(ns)) return NamespaceForbidden(ns);
  auto limit = LimitParam(req, options_);
  if (!limit.ok()) return Fail(limit.status());
  auto uids = store_->UidsOfName(ns, name);
  if (!uids.ok()) return Fail(uids.status());
  if (uids->empty()) {
    return ErrorResponse(404, NotFound("no pod " + rest + " in the history store (retention " +
                                       "may have removed it)"));
  }
  json current = nullptr;
  json list = json::array();
  bool truncated = false;
  for (const auto& uid : *uids) {
    json u = {{"uid", uid}};
    auto state = state_->Pod(uid);
    u["state"] = state ? *state : json(nullptr);
    u["deleted"] = state ? (*state)["deleted"].get<bool>() : true;
    if (state && !(*state)["deleted"].get<bool>()) current = *state;
    EventFilter f;
    f.uid = uid;
    auto events = store_->Events(f, "", *limit);
    if (!events.ok()) return Fail(events.status());
    json history = json::array();
    for (const auto& e : events->items) history.push_back(json::parse(LineWithId(e)));
    truncated |= !events->next.empty();
    u["history"] = std::move(history);
    auto placements = store_->Placements(ns, name, "", std::nullopt, "", options_.max_limit);
    if (!placements.ok()) return Fail(placements.status());
    json where = json::array();
    for (const auto& iv : placements->items) {
      if (iv.uid == uid) where.push_back(IntervalJson(iv));
    }
    u["placements"] = std::move(where);
    list.push_back(std::move(u));
  }
  return JsonOk({{"namespace", ns},
                 {"name", name},
                 {"current", current},
                 {"uids", std::move(list)},
                 {"history_truncated", truncated}});
}

HttpResponse QueryApi::Ip(const HttpRequest& req, const std::string& ip, const Access& access) {
  if (ip.empty() || ip.find('/') != std::string::npos) {
    return ErrorResponse(404, NotFound("use /v1/ips/{ip}"));
  }
  auto at = TimeParam(req, "at");
  if (!at.ok()) return Fail(at.status());
  auto limit = LimitParam(req, options_);
  if (!limit.ok()) return Fail(limit.status());
  auto page = store_->IpLeases(ip, *at, req.Query("continue"), *limit, access.filter());
  if (!page.ok()) return Fail(page.status());
  json out = {{"ip", ip}, {"holders", IntervalsJson(*page, state_->node_directory())}};
  out["at"] = *at ? json(TimeText(**at)) : json(nullptr);
  AddContinue(out, page->next);
  return JsonOk(out);
}

HttpResponse QueryApi::History(const HttpRequest& req, const Access& access) {
  EventFilter f;
  auto since = TimeParam(req, "since");
  if (!since.ok()) return Fail(since.status());
  auto until = TimeParam(req, "until");
  if (!until.ok()) return Fail(until.status());
  auto limit = LimitParam(req, options_);
  if (!limit.ok()) return Fail(limit.status());
  f.since = *since;
  f.until = *until;
  f.namespace_ = req.Query("namespace");
  f.name = req.Query("name");
  f.uid = req.Query("uid");
  f.node = req.Query("node");
  // event=IMAGE_ADDED,IMAGE_REMOVED: only those lines.
  const std::string events = req.Query("event");
  for (std::string_view rest = events; !rest.empty();) {
    size_t comma = rest.find(',');
    std::string_view one = rest.substr(0, comma);
    if (!one.empty()) {
      if (Status st = CheckEventName(one); !st.ok()) return Fail(st);
      f.events.emplace_back(one);
    }
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  if (!f.namespace_.empty() && !access.Allows(f.namespace_))
    return NamespaceForbidden(f.namespace_);
  f.namespaces = access.filter();
  auto page = store_->Events(f, req.Query("continue"), *limit);
  if (!page.ok()) return Fail(page.status());
  auto size = store_->Size();
  // Built as text: the lines are already JSON.
  std::string body = "{\"events\":[";
  for (size_t i = 0; i < page->items.size(); ++i) {
    if (i) body += ',';
    body += LineWithId(page->items[i]);
  }
  body += "],\"truncated\":";
  body += page->next.empty() ? "false" : "true";
  if (!page->next.empty()) body += ",\"continue\":" + json(page->next).dump();
  body += ",\"oldest\":";
  body += size.ok() && size->oldest_event ? json(TimeText(*size->oldest_event)).dump() : "null";
  body += '}';
  return HttpResponse::Json(200, std::move(body));
}

HttpResponse QueryApi::Placements(const HttpRequest& req, const Access& access) {
  auto at = TimeParam(req, "at");
  if (!at.ok()) return Fail(at.status());
  auto limit = LimitParam(req, options_);
  if (!limit.ok()) return Fail(limit.status());
  std::string ns = req.Query("namespace"), name = req.Query("name"), node = req.Query("node");
  if (!ns.empty() && !access.Allows(ns)) return NamespaceForbidden(ns);
  auto page =
      store_->Placements(ns, name, node, *at, req.Query("continue"), *limit, access.filter());
  if (!page.ok()) return Fail(page.status());
  json out = {{"placements", IntervalsJson(*page, state_->node_directory())},
              {"count", page->items.size()}};
  out["at"] = *at ? json(TimeText(**at)) : json(nullptr);
  AddContinue(out, page->next);
  return JsonOk(out);
}

HttpResponse QueryApi::Images(const HttpRequest& req, const Access& access) {
  auto at = TimeParam(req, "at");
  if (!at.ok()) return Fail(at.status());
  // digest= takes "sha256:..." or a container status imageID.
  const std::string asked = req.Query("digest");
  if (!*at && asked.empty()) return JsonOk(state_->Images(access.filter()));
  const std::string digest = ImageCensus::DigestOf(asked);
  if (!asked.empty() && digest.empty()) {
    return Fail(InvalidArgument("digest must be sha256:<hex> or an imageID that contains one"));
  }
  UnixMicros when = *at ? **at : Micros(std::chrono::system_clock::now());
  auto uses = store_->ImagesAt(when, access.filter());
  if (!uses.ok()) return Fail(uses.status());
  json images = json::array();
  for (const auto& u : *uses) {
    if (!digest.empty() && u.digest != digest) continue;
    images.push_back({{"image", u.image},
                      {"digest", u.digest},
                      {"image_id", u.digest},
                      {"pods", u.pods},
                      {"nodes", u.nodes}});
  }
  size_t n = images.size();
  return JsonOk({{"at", TimeText(when)}, {"images", std::move(images)}, {"count", n}});
}

HttpResponse QueryApi::Image(const HttpRequest& req, const std::string& image_or_digest,
                             const Access& access) {
  if (image_or_digest.empty()) return ErrorResponse(404, NotFound("use /v1/images/{image}"));
  auto limit = LimitParam(req, options_);
  if (!limit.ok()) return Fail(limit.status());
  auto since = TimeParam(req, "since");
  if (!since.ok()) return Fail(since.status());
  auto until = TimeParam(req, "until");
  if (!until.ok()) return Fail(until.status());
  // A full imageID ("docker.io/library/nginx@sha256:...") means its digest.
  std::string key = image_or_digest;
  if (key.find("@sha256:") != std::string::npos) key = ImageCensus::DigestOf(key);
  auto page =
      store_->ImageUsage(key, req.Query("continue"), *limit, access.filter(), *since, *until);
  if (!page.ok()) return Fail(page.status());
  std::set<std::string> nodes;
  for (const auto& iv : page->items) nodes.insert(iv.node);
  json out = {{"image", image_or_digest},
              {"nodes", nodes},
              {"intervals", IntervalsJson(*page)},
              {"count", page->items.size()}};
  AddContinue(out, page->next);
  return JsonOk(out);
}

}  // namespace ashiato
