// HttpClient: a libcurl easy handle kept alive across requests (HTTP/1.1
// keep-alive), with timeouts, TLS (CA file or PEM, client certificates),
// a bearer token fetched per request (so rotated tokens are picked up) and a
// streaming line reader for watches.
//
// Not thread-safe: use one HttpClient per thread. Cancel() is the exception.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace ashiato {

struct HttpClientOptions {
  // Scheme, host and port, e.g. "https://10.96.0.1:443". Paths are appended.
  std::string base_url;
  // Trust: a CA bundle file and/or PEM text. Empty both: the system store.
  std::string ca_file;
  std::string ca_pem;
  // Skip server certificate verification (kubeconfig insecure-skip-tls-verify).
  bool insecure_skip_tls_verify = false;
  // Client certificate and key, as files or PEM text.
  std::string client_cert_file;
  std::string client_key_file;
  std::string client_cert_pem;
  std::string client_key_pem;
  // Returns the bearer token for each request ("" for none).
  std::function<std::string()> bearer_token;
  long connect_timeout_ms = 5000;
  // Whole-request timeout for Do() unless overridden per call.
  long request_timeout_ms = 30000;
  std::string user_agent = "ashiato";
};

struct ClientResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // Names lower-cased.

  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request to base_url + path_and_query. Any HTTP status is a
  // response; transport failures are Unavailable, timeouts DeadlineExceeded,
  // Cancel() Cancelled. timeout_ms < 0 uses the default.
  Result<ClientResponse> Do(const std::string& method, const std::string& path_and_query,
                            const std::string& body = "",
                            const std::vector<std::pair<std::string, std::string>>& headers = {},
                            long timeout_ms = -1);

  // Streams a GET response line by line. on_line sees each complete line
  // (without '\n') as long as the status is 2xx and returns false to stop.
  // A non-2xx answer is returned with its body and on_line is not called.
  // The response body of a 2xx stream is not kept.
  Result<ClientResponse> StreamLines(const std::string& path_and_query,
                                     const std::function<bool(std::string_view)>& on_line,
                                     long timeout_ms);

  // Aborts the request in flight (within about a second) and every later one until
  // Reset(). Safe from any thread.
  void Cancel() { cancelled_ = true; }
  void Reset() { cancelled_ = false; }
  bool cancelled() const { return cancelled_; }

  const HttpClientOptions& options() const { return options_; }

  struct Transfer;

 private:
  Result<ClientResponse> Perform(const std::string& method, const std::string& url,
                                 const std::string& body,
                                 const std::vector<std::pair<std::string, std::string>>& headers,
                                 long timeout_ms, Transfer* transfer);

  HttpClientOptions options_;
  void* curl_ = nullptr;  // CURL*
  std::atomic<bool> cancelled_{false};
};

// Percent-encodes a query value (RFC 3986 unreserved characters kept).
std::string UrlEncode(std::string_view s);

}  // namespace ashiato
