// The server and client together over loopback: plain requests, limits,
// keep-alive and a chunked stream written from another thread.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/http_client.h"
#include "common/http_server.h"

namespace ashiato {
namespace {

std::unique_ptr<HttpServer> StartOrDie(HttpServerOptions opts, HttpHandler handler) {
  auto server = HttpServer::Start(opts, std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return std::move(server).value();
}

TEST(HttpTest, EchoesRequestParts) {
  auto server = StartOrDie({}, [](const HttpRequest& r) {
    return HttpResponse::Json(201, "{\"method\":\"" + r.method + "\",\"path\":\"" + r.path +
                                       "\",\"q\":\"" + r.Query("a") + "\",\"h\":\"" +
                                       r.Header("X-Test") +
                                       "\",\"len\":" + std::to_string(r.body.size()) + "}");
  });
  HttpClient client({.base_url = "http://127.0.0.1:" + std::to_string(server->port())});
  auto r = client.Do("POST", "/v1/x?a=b%20c", "hello", {{"X-Test", "yes"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, R"({"method":"POST","path":"/v1/x","q":"b c","h":"yes","len":5})");
  EXPECT_EQ(r->Header("content-type"), "application/json");
}

TEST(HttpTest, RejectsOversizeBody) {
  std::atomic<int> calls{0};
  HttpServerOptions opts;
  opts.max_body_bytes = 1024;
  auto server = StartOrDie(opts, [&](const HttpRequest&) {
    ++calls;
    return HttpResponse::Json(200, "{}");
  });
  HttpClient client({.base_url = "http://127.0.0.1:" + std::to_string(server->port())});
  auto r = client.Do("POST", "/", std::string(4096, 'x'));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(calls.load(), 0);
  auto ok = client.Do("POST", "/", std::string(100, 'x'));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(calls.load(), 1);
}

TEST(HttpTest, StreamsLinesWrittenLater) {
  auto stream = std::make_shared<ResponseStream>();
  auto server = StartOrDie({}, [&](const HttpRequest&) {
    HttpResponse r;
    r.stream = stream;
    return r;
  });
  std::thread writer([&] {
    for (int i = 0; i < 5; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      stream->Write("{\"n\":" + std::to_string(i) + "}\n");
    }
    stream->Close();
  });
  HttpClient client({.base_url = "http://127.0.0.1:" + std::to_string(server->port())});
  std::vector<std::string> lines;
  auto r = client.StreamLines(
      "/watch",
      [&](std::string_view l) {
        lines.emplace_back(l);
        return true;
      },
      10000);
  writer.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[4], "{\"n\":4}");
}

TEST(HttpTest, ClientStopsStreamAndServerNotices) {
  auto stream = std::make_shared<ResponseStream>();
  auto server = StartOrDie({}, [&](const HttpRequest&) {
    HttpResponse r;
    r.stream = stream;
    return r;
  });
  ASSERT_TRUE(stream->Write("first\n"));
  HttpClient client({.base_url = "http://127.0.0.1:" + std::to_string(server->port())});
  int seen = 0;
  auto r = client.StreamLines(
      "/watch",
      [&](std::string_view) {
        ++seen;
        return false;
      },
      10000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(seen, 1);
  // The server learns the client is gone once it tries to send again.
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = !stream->Write("more\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(gone);
}

TEST(HttpTest, StopEndsOpenStreams) {
  auto stream = std::make_shared<ResponseStream>();
  auto server = StartOrDie({}, [&](const HttpRequest&) {
    HttpResponse r;
    r.stream = stream;
    return r;
  });
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server->Stop();
  });
  HttpClient client({.base_url = "http://127.0.0.1:" + std::to_string(server->port())});
  auto r = client.StreamLines(
      "/watch", [](std::string_view) { return true; }, 10000);
  stopper.join();
  EXPECT_TRUE(stream->done());
}

TEST(HttpTest, ConnectionRefusedIsUnavailable) {
  uint16_t port;
  {
    auto server = StartOrDie({}, [](const HttpRequest&) { return HttpResponse::Json(200, "{}"); });
    port = server->port();
  }
  HttpClient client({.base_url = "http://127.0.0.1:" + std::to_string(port)});
  auto r = client.Do("GET", "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

TEST(HttpTest, SmallConnectionMemoryStillTakesLongTokensAndBigBodies) {
  HttpServerOptions opts;
  opts.connection_memory_bytes = 16 * 1024;
  auto server = StartOrDie(opts, [](const HttpRequest& r) {
    return HttpResponse::Json(200, "{\"auth\":" + std::to_string(r.Header("authorization").size()) +
                                       ",\"body\":" + std::to_string(r.body.size()) + "}");
  });
  std::string token(6000, 't');  // Bound service account tokens are ~1-2 KiB.
  HttpClient client({.base_url = "http://127.0.0.1:" + std::to_string(server->port()),
                     .bearer_token = [&] { return token; }});
  auto r = client.Do("POST", "/", std::string(1 << 20, 'x'));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"auth\":6007,\"body\":1048576}");
}

TEST(HttpTest, ListenAddressParsing) {
  EXPECT_TRUE(ParseListenAddress(":8080").ok());
  EXPECT_EQ(ParseListenAddress("127.0.0.1:0")->first, "127.0.0.1");
  EXPECT_FALSE(ParseListenAddress("nope").ok());
  EXPECT_FALSE(ParseListenAddress("1.2.3.4:99999").ok());
}

}  // namespace
}  // namespace ashiato
