// The aggregator's HTTP API through AggregatorService::Handle, with
// --auth none over a history store in a temporary directory: POST
// /v1/reports (gzip and identity), every query endpoint and parameter.
// One service per process; the store is replaced every kResetEvery inputs
// so that it stays small during long runs.
//
// Input: an HTTP request as text:
//   METHOD /path?query
//   header-name: value
//   ...
//   (empty line)
//   body
// Path and query are percent-decoded as HttpServer does.
//
// Invariants: Handle never throws (HttpServer would answer 500); the
// status is 2xx/4xx/503, never 500; a JSON answer parses (its strings are
// valid UTF-8) and an error answer has an "error" field.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "aggregator/metrics.h"
#include "aggregator/service.h"
#include "aggregator/state.h"
#include "aggregator/store/store.h"
#include "tests/fuzz/fuzz.h"

namespace ashiato {
namespace {

constexpr int kResetEvery = 20000;

std::string PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

HttpRequest ParseRequest(std::string_view in) {
  HttpRequest req;
  std::string_view line = fuzz::SplitOnce(&in, '\n');
  req.method = std::string(fuzz::SplitOnce(&line, ' '));
  std::string_view target = line;
  std::string_view path = fuzz::SplitOnce(&target, '?');
  req.path = PercentDecode(path, false);
  while (!target.empty()) {
    std::string_view kv = fuzz::SplitOnce(&target, '&');
    std::string_view k = fuzz::SplitOnce(&kv, '=');
    req.query[PercentDecode(k, true)] = PercentDecode(kv, true);
  }
  while (!in.empty()) {
    std::string_view h = fuzz::SplitOnce(&in, '\n');
    if (h.empty()) break;
    std::string_view name = fuzz::SplitOnce(&h, ':');
    while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
    std::string key(name);
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    req.headers[key] = std::string(h);
  }
  req.body = std::string(in);
  req.remote_addr = "127.0.0.1:1";
  return req;
}

class Fixture {
 public:
  Fixture() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/ashiato-fuzz-service-XXXXXX";
    FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr, "mkdtemp");
    root_ = tmpl;
    Open();
  }
  ~Fixture() {
    Close();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  AggregatorService& service() {
    if (++inputs_ % kResetEvery == 0) {
      Close();
      Open();
    }
    return *service_;
  }

 private:
  void Open() {
    std::string dir = root_ + "/store-" + std::to_string(generation_++);
    metrics_ = std::make_unique<AggregatorMetrics>(std::make_shared<prometheus::Registry>());
    StoreOptions so;
    so.dir = dir;
    so.registry = metrics_->registry.get();
    auto store = Store::Open(so);
    FUZZ_CHECK(store.ok(), store.status().ToString());
    store_ = std::move(store.value());
    state_ = std::make_unique<ClusterState>(StateOptions{}, store_.get(), metrics_.get());
    Status st = state_->Open();
    FUZZ_CHECK(st.ok(), st.ToString());
    ServiceOptions svc;
    svc.max_decoded_bytes = 1 << 20;
    service_ = std::make_unique<AggregatorService>(svc, state_.get(), nullptr, metrics_.get());
    service_->SetReady(true);
    dir_ = dir;
  }
  void Close() {
    service_.reset();
    state_.reset();
    store_.reset();
    metrics_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string root_, dir_;
  int generation_ = 0;
  long inputs_ = 0;
  std::unique_ptr<AggregatorMetrics> metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ClusterState> state_;
  std::unique_ptr<AggregatorService> service_;
};

Fixture* fixture = nullptr;

void TearDown() {
  delete fixture;
  fixture = nullptr;
}

}  // namespace
}  // namespace ashiato

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  ashiato::fixture = new ashiato::Fixture();
  std::atexit(ashiato::TearDown);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ashiato;
  if (fixture == nullptr) LLVMFuzzerInitialize(nullptr, nullptr);
  HttpRequest req = ParseRequest(fuzz::AsText(data, size));
  HttpResponse resp;
  try {
    resp = fixture->service().Handle(req);
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, std::string("Handle threw (HttpServer answers 500): ") + e.what());
  }
  FUZZ_CHECK(resp.status != 500, "500 for " + req.method + " " + req.path + ": " + resp.body);
  FUZZ_CHECK((resp.status >= 200 && resp.status < 300) ||
                 (resp.status >= 400 && resp.status < 500) || resp.status == 503,
             "status " + std::to_string(resp.status));
  if (resp.content_type == "application/json" && !resp.stream) {
    auto j = nlohmann::json::parse(resp.body, nullptr, /*allow_exceptions=*/false);
    FUZZ_CHECK(!j.is_discarded(), "not JSON: " + resp.body);
    if (resp.status >= 400) FUZZ_CHECK(j.is_object() && j.contains("error"), resp.body);
  }
  return 0;
}
