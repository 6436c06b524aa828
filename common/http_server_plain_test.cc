// The static agent's HTTP server (ASHIATO_HTTPS_SERVER=0, `make agent-static`):
// serves plain HTTP over the static libmicrohttpd and libcurl, and refuses TLS
// options with a clear error instead of starting a server that cannot serve them.
#include <gtest/gtest.h>

#include "common/http_client.h"
#include "common/http_server.h"

namespace ashiato {
namespace {

TEST(PlainHttpServer, ServesHttp) {
  auto server = HttpServer::Start(
      {}, [](const HttpRequest& r) { return HttpResponse::Text(200, "ok " + r.path); });
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  HttpClient client({.base_url = "http://127.0.0.1:" + std::to_string((*server)->port())});
  auto r = client.Do("GET", "/healthz");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok /healthz");
}

TEST(PlainHttpServer, RefusesTlsOptions) {
  HttpServerOptions pem;
  pem.tls_cert_pem = "-----BEGIN CERTIFICATE-----";
  pem.tls_key_pem = "-----BEGIN PRIVATE KEY-----";
  HttpServerOptions files;
  files.tls_cert_file = "/nonexistent/tls.crt";
  files.tls_key_file = "/nonexistent/tls.key";
  for (const auto& options : {pem, files}) {
    auto server = HttpServer::Start(options, [](const HttpRequest&) { return HttpResponse{}; });
    ASSERT_FALSE(server.ok());
    EXPECT_EQ(server.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(server.status().message().find("plain HTTP only"), std::string::npos);
  }
}

}  // namespace
}  // namespace ashiato
