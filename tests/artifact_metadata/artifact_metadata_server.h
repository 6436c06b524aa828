// ArtifactMetadataServer: a stand-in for GitHub's artifact-metadata REST
// API (deployment records) for end-to-end tests. Records every request and
// answers as told: 201, a status (500, 422...) with headers (429 with
// Retry-After), or never (a request that hangs until the client gives up).
#pragma once

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/http_server.h"

namespace ashiato::testing {

class ArtifactMetadataServer {
 public:
  struct Request {
    std::string method, path;
    std::map<std::string, std::string> headers;  // Lower-cased names.
    nlohmann::json body;                         // null when not JSON.
    int answered = 0;                            // Status sent; 0 = hung.
  };
  // How the next requests are answered.
  struct Answer {
    int status = 201;  // 0 = hang (never answer).
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body = "{}";
  };

  static std::unique_ptr<ArtifactMetadataServer> Start();
  ~ArtifactMetadataServer();

  std::string url() const;
  // Every later request gets `a` until changed.
  void Answer(struct Answer a);
  // Every request so far.
  std::vector<Request> Requests() const;
  // Bodies of deployment records answered 2xx (POST .../deployment-record), in order.
  std::vector<nlohmann::json> Accepted() const;

 private:
  ArtifactMetadataServer() = default;
  HttpResponse Handle(const HttpRequest& r);

  mutable std::mutex mu_;
  struct Answer answer_;
  std::vector<Request> requests_;
  std::vector<std::shared_ptr<ResponseStream>> hung_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace ashiato::testing
