// HttpServer under stress and over TLS: hundreds of start/stop cycles with
// concurrent clients (keep-alive requests, requests in flight, suspended
// streams), HTTPS from files, and certificate reloads as cert-manager does
// them. Run under ASan/UBSan too (make test-sanitize).
#include "common/http_server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "tests/kubesim/tls_cert.h"
#include "tests/testing/subprocess.h"

namespace ashiato {
namespace {

using namespace std::chrono_literals;

int Cycles(int def) {
  const char* v = std::getenv("ASHIATO_STRESS_CYCLES");
  return v && *v ? std::atoi(v) : def;
}

// Starts and stops a server `cycles` times. Each time, clients hammer it
// with keep-alive requests (some still being handled when Stop() comes),
// open streams that are left suspended, and new connections; Stop() must
// return within its grace (plus slack) and never abort the process.
void StartStopUnderLoad(int cycles, const HttpServerOptions& base, const HttpClientOptions& cbase,
                        const std::string& scheme) {
  std::mt19937 rng(42);
  for (int cycle = 0; cycle < cycles; ++cycle) {
    HttpServerOptions o = base;
    o.threads = 1 + cycle % 3;  // The single event thread and a pool of epoll threads.
    o.stop_grace = std::chrono::milliseconds(20 + rng() % 60);
    std::mutex mu;
    std::vector<std::shared_ptr<ResponseStream>> streams;
    std::atomic<int> handled{0};
    auto server = HttpServer::Start(o, [&](const HttpRequest& r) {
      if (r.path == "/watch") {
        auto s = std::make_shared<ResponseStream>();
        s->Write("hello\n");
        std::lock_guard<std::mutex> lock(mu);
        streams.push_back(s);
        HttpResponse resp;
        resp.stream = s;
        return resp;
      }
      if (r.path == "/slow") std::this_thread::sleep_for(2ms);  // Work in flight at Stop().
      ++handled;
      return HttpResponse::Json(200, "{\"n\":" + std::to_string(r.body.size()) + "}");
    });
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    uint16_t port = (*server)->port();
    std::atomic<bool> done{false};
    std::vector<std::unique_ptr<HttpClient>> clients;
    std::vector<std::thread> threads;
    for (int c = 0; c < 5; ++c) {
      HttpClientOptions co = cbase;
      co.base_url = scheme + "://127.0.0.1:" + std::to_string(port);
      co.request_timeout_ms = 5000;
      clients.push_back(std::make_unique<HttpClient>(co));
      HttpClient* client = clients.back().get();
      threads.emplace_back([&, client, c] {
        for (int i = 0; !done; ++i) {
          if (c == 0 && i % 4 == 0) {
            // A watch: read lines until the server ends the stream.
            (void)client->StreamLines(
                "/watch", [](std::string_view) { return true; }, 5000);
          } else if (i % 3 == 0) {
            (void)client->Do("POST", "/slow", std::string(4096, 'x'));
          } else {
            (void)client->Do("GET", "/fast");
          }
        }
      });
    }
    // Keeps some streams busy (resumed) while others stay suspended.
    threads.emplace_back([&] {
      while (!done) {
        {
          std::lock_guard<std::mutex> lock(mu);
          for (size_t i = 0; i < streams.size(); i += 2) streams[i]->Write("tick\n");
        }
        std::this_thread::sleep_for(1ms);  // Pacing the load, not waiting for anything.
      }
    });
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          std::lock_guard<std::mutex> lock(mu);
          return handled >= 10 && !streams.empty();
        },
        10000ms))
        << "cycle " << cycle << ": clients made no progress";
    auto t0 = std::chrono::steady_clock::now();
    (*server)->Stop();
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_LT(took, o.stop_grace + 2000ms) << "cycle " << cycle;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& s : streams) EXPECT_TRUE(s->done()) << "cycle " << cycle;
    }
    done = true;
    for (auto& c : clients) c->Cancel();
    for (auto& t : threads) t.join();
    // Stopped means stopped: nothing listens any more.
    HttpClientOptions co = cbase;
    co.base_url = scheme + "://127.0.0.1:" + std::to_string(port);
    HttpClient after(co);
    auto r = after.Do("GET", "/fast");
    EXPECT_FALSE(r.ok() && r->status == 200) << "cycle " << cycle << ": still serving";
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(HttpServerStress, StartStopUnderLoadNeverAborts) {
  StartStopUnderLoad(Cycles(200), HttpServerOptions{}, HttpClientOptions{}, "http");
}

TEST(HttpServerStress, StopAnswersLateRequests503AndEndsStreams) {
  HttpServerOptions o;
  o.threads = 2;
  o.stop_grace = 5000ms;
  std::atomic<bool> release{false};
  std::atomic<int> in_handler{0};
  std::atomic<int> watching{0};
  auto stream = std::make_shared<ResponseStream>();
  auto server = HttpServer::Start(o, [&](const HttpRequest& r) {
    if (r.path == "/watch") {
      ++watching;
      HttpResponse resp;
      resp.stream = stream;
      return resp;
    }
    ++in_handler;
    while (!release) std::this_thread::sleep_for(1ms);  // Held until the test lets go.
    return HttpResponse::Json(200, "{}");
  });
  ASSERT_TRUE(server.ok());
  std::string url = "http://127.0.0.1:" + std::to_string((*server)->port());
  HttpClient watcher({.base_url = url});
  std::atomic<int> lines_seen{0};
  std::thread watch([&] {
    (void)watcher.StreamLines(
        "/watch",
        [&](std::string_view) {
          ++lines_seen;
          return true;
        },
        10000);
  });
  // The watch is open before the held request starts: an event thread
  // accepts every connection that is pending, so a watch accepted with the
  // held request by the same thread would wait behind it, never to be
  // handled; and a watch arriving after Stop() began gets 503, not a stream.
  ASSERT_TRUE(testing::WaitFor([&] { return watching == 1; }, 5000ms));
  // A line reached the client: the handler returned and the stream is live.
  stream->Write("{}\n");
  ASSERT_TRUE(testing::WaitFor([&] { return lines_seen == 1; }, 5000ms));
  HttpClient slow({.base_url = url});
  Result<ClientResponse> slow_answer = Unavailable("not yet");
  std::thread inflight([&] { slow_answer = slow.Do("GET", "/held"); });
  ASSERT_TRUE(testing::WaitFor([&] { return in_handler == 1; }, 5000ms));
  std::thread stopper([&] { (*server)->Stop(); });
  // While Stop() waits for the held request, the stream has ended and a new
  // request gets 503 with Connection: close.
  ASSERT_TRUE(testing::WaitFor([&] { return stream->done(); }, 5000ms));
  HttpClient late({.base_url = url});
  auto r = late.Do("GET", "/late");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->Header("connection"), "close");
  release = true;
  stopper.join();
  inflight.join();
  watch.join();
  // The request that was being handled when Stop() began got its answer.
  ASSERT_TRUE(slow_answer.ok()) << slow_answer.status().ToString();
  EXPECT_EQ(slow_answer->status, 200);
}

// TLS material for 127.0.0.1 written to files, as a Secret volume shows them.
struct TlsFiles {
  std::string dir = testing::MakeTempDir("ashiato-tls");
  std::string cert = dir + "/tls.crt";
  std::string key = dir + "/tls.key";
  ~TlsFiles() { testing::RemoveTree(dir); }
  // Replaces a file the way the kubelet does: write aside, rename over.
  static void Put(const std::string& path, const std::string& text) {
    std::string tmp = path + ".tmp";
    std::ofstream(tmp, std::ios::trunc) << text;
    ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);
  }
  void Write(const kubesim::TlsMaterial& m) {
    Put(cert, m.cert_pem);
    Put(key, m.key_pem);
  }
};

kubesim::TlsMaterial NewMaterial() {
  auto m = kubesim::GenerateTlsMaterial();
  EXPECT_TRUE(m.ok());
  return *m;
}

// True iff a fresh client trusting `ca` completes a request.
bool Trusted(uint16_t port, const std::string& ca) {
  HttpClient c({.base_url = "https://127.0.0.1:" + std::to_string(port), .ca_pem = ca});
  auto r = c.Do("GET", "/");
  return r.ok() && r->status == 200;
}

TEST(HttpServerTls, ServesFilesAndReloadsThemWhenTheyChange) {
  TlsFiles files;
  kubesim::TlsMaterial a = NewMaterial(), b = NewMaterial();
  files.Write(a);
  HttpServerOptions o;
  o.tls_cert_file = files.cert;
  o.tls_key_file = files.key;
  o.tls_reload_interval = 20ms;
  o.threads = 2;
  auto server =
      HttpServer::Start(o, [](const HttpRequest&) { return HttpResponse::Json(200, "{}"); });
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  uint16_t port = (*server)->port();
  EXPECT_TRUE(Trusted(port, a.ca_pem));
  EXPECT_FALSE(Trusted(port, b.ca_pem)) << "a client must refuse a certificate it does not trust";
  // Plain HTTP on the TLS port gets nothing useful.
  HttpClient plain({.base_url = "http://127.0.0.1:" + std::to_string(port)});
  auto p = plain.Do("GET", "/");
  EXPECT_FALSE(p.ok() && p->status == 200);
  // A half-done rotation (new certificate, old key) is not loaded ...
  TlsFiles::Put(files.cert, b.cert_pem);
  ASSERT_TRUE(testing::WaitFor([&] { return (*server)->tls_reload_failures() >= 1; }, 5000ms));
  EXPECT_EQ((*server)->tls_reloads(), 0u);
  EXPECT_TRUE(Trusted(port, a.ca_pem)) << "the previous certificate must stay in service";
  // ... the complete one is.
  TlsFiles::Put(files.key, b.key_pem);
  ASSERT_TRUE(testing::WaitFor([&] { return Trusted(port, b.ca_pem); }, 5000ms));
  EXPECT_EQ((*server)->tls_reloads(), 1u);
  EXPECT_FALSE(Trusted(port, a.ca_pem));
}

TEST(HttpServerTls, RefusesMissingOrMismatchedMaterial) {
  TlsFiles files;
  kubesim::TlsMaterial a = NewMaterial(), b = NewMaterial();
  HttpServerOptions o;
  o.tls_cert_file = files.cert;
  o.tls_key_file = files.key;
  auto handler = [](const HttpRequest&) { return HttpResponse::Json(200, "{}"); };
  EXPECT_FALSE(HttpServer::Start(o, handler).ok()) << "files missing";
  TlsFiles::Put(files.cert, a.cert_pem);
  TlsFiles::Put(files.key, b.key_pem);
  auto r = HttpServer::Start(o, handler);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("does not match"), std::string::npos) << r.status().message();
  o.tls_key_file.clear();
  EXPECT_FALSE(HttpServer::Start(o, handler).ok()) << "a certificate without a key";
}

TEST(HttpServerStress, TlsStartStopUnderLoadNeverAborts) {
  TlsFiles files;
  kubesim::TlsMaterial a = NewMaterial();
  files.Write(a);
  HttpServerOptions o;
  o.tls_cert_file = files.cert;
  o.tls_key_file = files.key;
  HttpClientOptions co;
  co.ca_pem = a.ca_pem;
  StartStopUnderLoad(Cycles(200) / 2, o, co, "https");
}

}  // namespace
}  // namespace ashiato
