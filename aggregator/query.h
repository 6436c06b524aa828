// QueryApi: the read endpoints of the aggregator (docs/api.md). Current
// pods and nodes come from ClusterState's cache; everything about the past
// comes from the Store, for any time inside retention, in pages
// (`limit` + `continue`) with a stable order.
//
// Every answer is limited to the caller's NamespaceAccess (aggregator/authz.h):
// pods, events, placements, IP leases and image uses of other namespaces
// are left out (counts included), a `namespace` parameter outside it is a
// 403, and /v1/nodes (about every pod of a node) needs access to all.
#pragma once

#include <string>

#include "aggregator/authz.h"
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

  using Access = NamespaceAccess;

  HttpResponse Nodes(const Access& access = Access::All());
  HttpResponse Pods(const HttpRequest& request, const Access& access = Access::All());
  // GET /v1/pods/{namespace}/{name}; `rest` is "{namespace}/{name}".
  HttpResponse PodByName(const HttpRequest& request, const std::string& rest,
                         const Access& access = Access::All());
  HttpResponse Ip(const HttpRequest& request, const std::string& ip,
                  const Access& access = Access::All());
  HttpResponse History(const HttpRequest& request, const Access& access = Access::All());
  HttpResponse Placements(const HttpRequest& request, const Access& access = Access::All());
  HttpResponse Images(const HttpRequest& request, const Access& access = Access::All());
  HttpResponse Image(const HttpRequest& request, const std::string& image_or_digest,
                     const Access& access = Access::All());

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
