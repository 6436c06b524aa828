// QueryApi: the read endpoints of the aggregator (docs/api.md). Current
// pods and nodes come from ClusterState's cache; everything about the past
// comes from the Store, for any time inside retention, in pages
// (`limit` + `continue`) with a stable order.
#pragma once

#include <string>

#include "aggregator/state.h"
#include "aggregator/store/store.h"
#include "common/http_server.h"

namespace ashiato {

struct QueryOptions {
  // Default and maximum `limit` of paginated answers.
  size_t default_limit = 1000;
  size_t max_limit = 100000;
};

class QueryApi {
 public:
  QueryApi(QueryOptions options, ClusterState* state, Store* store);

  HttpResponse Nodes();
  HttpResponse Pods(const HttpRequest& request);
  // GET /v1/pods/{namespace}/{name}; `rest` is "{namespace}/{name}".
  HttpResponse PodByName(const HttpRequest& request, const std::string& rest);
  HttpResponse Ip(const HttpRequest& request, const std::string& ip);
  HttpResponse History(const HttpRequest& request);
  HttpResponse Placements(const HttpRequest& request);
  HttpResponse Images(const HttpRequest& request);
  HttpResponse Image(const HttpRequest& request, const std::string& image_or_digest);

 private:
  QueryOptions options_;
  ClusterState* state_;
  Store* store_;
};

// {"error": message, "code": "InvalidArgument"} with the matching status.
HttpResponse ErrorResponse(int http_status, const Status& status);
// The HTTP status for a Status code (400, 401, 403, 404, 409, 413, 503, 500).
int HttpStatusFor(const Status& status);

}  // namespace ashiato
