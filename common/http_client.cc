#include "common/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

#if ASHIATO_CURL_MBEDTLS
#include "common/mbedtls_ip_san.h"
#endif

namespace ashiato {

namespace {

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

}  // namespace

struct HttpClient::Transfer {
  HttpClient* client = nullptr;
  ClientResponse response;
  long status_seen = 0;
  // Streaming mode: lines go to on_line once the status is known to be 2xx.
  const std::function<bool(std::string_view)>* on_line = nullptr;
  std::string partial;
  bool stopped_by_caller = false;
#if ASHIATO_CURL_MBEDTLS
  IpLiteral ip;  // The server's address, when the URL names it by IP.
#endif

  static size_t OnHeader(char* data, size_t size, size_t n, void* cls) {
    auto* t = static_cast<Transfer*>(cls);
    std::string line(data, size * n);
    if (line.rfind("HTTP/", 0) == 0) {
      t->response.headers.clear();  // A new response (e.g. after 100-continue).
      auto sp = line.find(' ');
      if (sp != std::string::npos) t->status_seen = std::strtol(line.c_str() + sp + 1, nullptr, 10);
      return size * n;
    }
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string key = line.substr(0, colon);
      std::transform(key.begin(), key.end(), key.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      t->response.headers[key] = Trim(line.substr(colon + 1));
    }
    return size * n;
  }

  static size_t OnBody(char* data, size_t size, size_t n, void* cls) {
    auto* t = static_cast<Transfer*>(cls);
    size_t len = size * n;
    bool streaming = t->on_line != nullptr && t->status_seen >= 200 && t->status_seen < 300;
    if (!streaming) {
      t->response.body.append(data, len);
      return len;
    }
    t->partial.append(data, len);
    size_t start = 0;
    while (true) {
      size_t nl = t->partial.find('\n', start);
      if (nl == std::string::npos) break;
      std::string_view line(t->partial.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!line.empty() && !(*t->on_line)(line)) {
        t->stopped_by_caller = true;
        return 0;  // Makes curl abort the transfer.
      }
      start = nl + 1;
    }
    t->partial.erase(0, start);
    return len;
  }

  static int OnProgress(void* cls, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* t = static_cast<Transfer*>(cls);
    return t->client->cancelled_ ? 1 : 0;
  }
};

HttpClient::HttpClient(HttpClientOptions options) : options_(std::move(options)) {
  GlobalInitOnce();
  curl_ = curl_easy_init();
}

HttpClient::~HttpClient() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result<ClientResponse> HttpClient::Do(
    const std::string& method, const std::string& path_and_query, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers, long timeout_ms) {
  Transfer transfer;
  return Perform(method, options_.base_url + path_and_query, body, headers,
                 timeout_ms < 0 ? options_.request_timeout_ms : timeout_ms, &transfer);
}

Result<ClientResponse> HttpClient::StreamLines(const std::string& path_and_query,
                                               const std::function<bool(std::string_view)>& on_line,
                                               long timeout_ms) {
  Transfer transfer;
  transfer.on_line = &on_line;
  auto r = Perform("GET", options_.base_url + path_and_query, "", {}, timeout_ms, &transfer);
  if (!r.ok() && transfer.stopped_by_caller) {
    ClientResponse resp;
    resp.status = transfer.status_seen;
    resp.headers = transfer.response.headers;
    return resp;
  }
  return r;
}

Result<ClientResponse> HttpClient::Perform(
    const std::string& method, const std::string& url, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers, long timeout_ms,
    Transfer* transfer) {
  if (curl_ == nullptr) return Internal("curl_easy_init failed");
  if (cancelled_) return Status(StatusCode::kCancelled, "cancelled");
  CURL* c = static_cast<CURL*>(curl_);
  // Keep the connection cache; clear per-request options.
  curl_easy_reset(c);
  transfer->client = this;

  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, options_.connect_timeout_ms);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 0L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &Transfer::OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, transfer);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Transfer::OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, transfer);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &Transfer::OnProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, transfer);

  if (options_.insecure_skip_tls_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
#if ASHIATO_CURL_MBEDTLS
  MatchIpSanForIpHosts(c, url, &transfer->ip);
#endif
  curl_blob ca_blob{};
  // A CA given (kubeconfig, ServiceAccount, --aggregator-ca-file) is the only
  // one trusted, as in client-go: no CA directory (libcurl's build-time default
  // /etc/ssl/certs) beside it. mbedTLS would also parse all of that directory
  // on every handshake (1.3 MiB of heap).
  if (!options_.ca_pem.empty()) {
    ca_blob.data = const_cast<char*>(options_.ca_pem.data());
    ca_blob.len = options_.ca_pem.size();
    ca_blob.flags = CURL_BLOB_NOCOPY;
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca_blob);
    curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
  } else if (!options_.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
#if LIBCURL_VERSION_NUM >= 0x075700
    // curl keeps a loaded CA store for a day by default: re-read the file
    // every 5 minutes, so a rotated CA (a Secret volume) is picked up.
    curl_easy_setopt(c, CURLOPT_CA_CACHE_TIMEOUT, 300L);
#endif
  }
  curl_blob cert_blob{}, key_blob{};
  if (!options_.client_cert_pem.empty()) {
    cert_blob = {const_cast<char*>(options_.client_cert_pem.data()),
                 options_.client_cert_pem.size(), CURL_BLOB_NOCOPY};
    curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert_blob);
    curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
  } else if (!options_.client_cert_file.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, options_.client_cert_file.c_str());
  }
  if (!options_.client_key_pem.empty()) {
    // With its terminating NUL: mbedTLS parses a PEM key only if the buffer
    // ends in one, and curl copies the blob as it is (OpenSSL ignores it).
    key_blob = {const_cast<char*>(options_.client_key_pem.data()),
                options_.client_key_pem.size() + 1, CURL_BLOB_NOCOPY};
    curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key_blob);
    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
  } else if (!options_.client_key_file.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLKEY, options_.client_key_file.c_str());
  }

  curl_slist* list = nullptr;
  for (const auto& [k, v] : headers) list = curl_slist_append(list, (k + ": " + v).c_str());
  if (options_.bearer_token) {
    std::string token = options_.bearer_token();
    if (!token.empty()) list = curl_slist_append(list, ("Authorization: Bearer " + token).c_str());
  }
  list = curl_slist_append(list, "Expect:");  // No 100-continue round trip.

  if (method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else if (method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (method != "DELETE" || !body.empty()) {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);

  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(list);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  transfer->response.status = status;

  if (rc == CURLE_OK) return std::move(transfer->response);
  if (transfer->stopped_by_caller) {
    return Status(StatusCode::kCancelled, "stopped by caller").set_http_status(status);
  }
  std::string what = std::string(curl_easy_strerror(rc)) + " (" + url + ")";
  if (rc == CURLE_ABORTED_BY_CALLBACK) return Status(StatusCode::kCancelled, "cancelled");
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return Status(StatusCode::kDeadlineExceeded, what).set_http_status(status);
  }
  return Status(StatusCode::kUnavailable, what).set_http_status(status);
}

std::string UrlEncode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

}  // namespace ashiato
