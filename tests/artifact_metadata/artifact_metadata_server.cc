#include "tests/artifact_metadata/artifact_metadata_server.h"

namespace ashiato::testing {

std::unique_ptr<ArtifactMetadataServer> ArtifactMetadataServer::Start() {
  std::unique_ptr<ArtifactMetadataServer> s(new ArtifactMetadataServer());
  HttpServerOptions o;
  o.listen = "127.0.0.1:0";
  o.threads = 2;
  o.stop_grace = std::chrono::milliseconds(200);
  ArtifactMetadataServer* self = s.get();
  auto server = HttpServer::Start(o, [self](const HttpRequest& r) { return self->Handle(r); });
  if (!server.ok()) return nullptr;
  s->server_ = std::move(server.value());
  return s;
}

ArtifactMetadataServer::~ArtifactMetadataServer() {
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& h : hung_) h->Close();
  }
  if (server_) server_->Stop();
}

std::string ArtifactMetadataServer::url() const {
  return "http://127.0.0.1:" + std::to_string(server_->port());
}

void ArtifactMetadataServer::Answer(struct Answer a) {
  std::lock_guard<std::mutex> l(mu_);
  answer_ = std::move(a);
}

std::vector<ArtifactMetadataServer::Request> ArtifactMetadataServer::Requests() const {
  std::lock_guard<std::mutex> l(mu_);
  return requests_;
}

std::vector<nlohmann::json> ArtifactMetadataServer::Accepted() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<nlohmann::json> out;
  for (const auto& r : requests_) {
    bool record = r.path.size() > 18 && r.path.substr(r.path.size() - 18) == "/deployment-record";
    if (r.method == "POST" && record && r.answered >= 200 && r.answered < 300) {
      out.push_back(r.body);
    }
  }
  return out;
}

HttpResponse ArtifactMetadataServer::Handle(const HttpRequest& r) {
  std::lock_guard<std::mutex> l(mu_);
  Request rec;
  rec.method = r.method;
  rec.path = r.path;
  rec.headers = r.headers;
  rec.body = nlohmann::json::parse(r.body, nullptr, false);
  if (rec.body.is_discarded()) rec.body = nullptr;
  rec.answered = answer_.status;
  requests_.push_back(rec);
  HttpResponse resp;
  if (answer_.status == 0) {
    // Headers go out, the body never: the client times out.
    resp.status = 201;
    resp.stream = std::make_shared<ResponseStream>();
    hung_.push_back(resp.stream);
    return resp;
  }
  resp.status = answer_.status;
  resp.body = answer_.body;
  resp.headers = answer_.headers;
  return resp;
}

}  // namespace ashiato::testing
