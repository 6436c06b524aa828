#include "common/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

// ASHIATO_HTTPS_SERVER=0 (the static agent, ASHIATO_STATIC_AGENT) builds a
// plain-HTTP server with no GnuTLS: the agent's health endpoint needs no TLS.
#ifndef ASHIATO_HTTPS_SERVER
#define ASHIATO_HTTPS_SERVER 1
#endif
#if ASHIATO_HTTPS_SERVER
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#endif

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <thread>
#include <unordered_set>

namespace ashiato {

// ---------------------------------------------------------------- requests

std::string HttpRequest::Query(const std::string& key, const std::string& def) const {
  auto it = query.find(key);
  return it == query.end() ? def : it->second;
}

std::string HttpRequest::Header(const std::string& name) const {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  auto it = headers.find(lower);
  return it == headers.end() ? "" : it->second;
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

// ---------------------------------------------------------------- streams

ResponseStream::ResponseStream(size_t max_pending_bytes) : max_pending_(max_pending_bytes) {}
ResponseStream::~ResponseStream() = default;

bool ResponseStream::Write(std::string data) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_ || client_gone_) return false;
  if (buffer_.size() - offset_ + data.size() > max_pending_) {
    // A client that cannot keep up is cut off, as the API server does with
    // slow watchers, instead of growing without bound.
    closed_ = true;
  } else {
    if (offset_ > 0 && offset_ == buffer_.size()) {
      buffer_.clear();
      offset_ = 0;
    }
    buffer_.append(data);
  }
  if (suspended_ && resume_) {
    suspended_ = false;
    resume_();
  }
  return !closed_;
}

void ResponseStream::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  if (suspended_ && resume_) {
    suspended_ = false;
    resume_();
  }
}

bool ResponseStream::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_ || client_gone_;
}

size_t ResponseStream::pending_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return buffer_.size() - offset_;
}

long ResponseStream::ReadForServer(char* buf, size_t max) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t avail = buffer_.size() - offset_;
  if (avail == 0) {
    if (closed_ || client_gone_) return -1;
    // Suspend while holding the lock so a concurrent Write cannot slip its
    // resume in before the suspension (a lost wake-up).
    if (suspend_) {
      suspended_ = true;
      suspend_();
    }
    return 0;
  }
  size_t n = std::min(avail, max);
  std::memcpy(buf, buffer_.data() + offset_, n);
  offset_ += n;
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  } else if (offset_ > (1 << 20)) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  return static_cast<long>(n);
}

void ResponseStream::AttachHooks(std::function<void()> suspend, std::function<void()> resume) {
  std::lock_guard<std::mutex> lock(mu_);
  suspend_ = std::move(suspend);
  resume_ = std::move(resume);
  if (!resume_) suspended_ = false;
}

void ResponseStream::MarkClientGone() {
  std::lock_guard<std::mutex> lock(mu_);
  client_gone_ = true;
  buffer_.clear();
  offset_ = 0;
}

// ---------------------------------------------------------------- server

namespace {

// Per-request state, alive from the first access-handler call to completion.
struct RequestContext {
  HttpRequest request;
  bool too_large = false;
  std::shared_ptr<ResponseStream> stream;
};

// State of a streamed response, owned by the MHD response.
struct StreamContext {
  std::shared_ptr<ResponseStream> stream;
};

#if ASHIATO_HTTPS_SERVER
// A certificate chain and its key in the form GnuTLS hands out in a
// handshake. Immutable once loaded.
struct TlsCredentials {
  std::vector<gnutls_pcert_st> certs;
  unsigned count = 0;
  gnutls_privkey_t key = nullptr;

  TlsCredentials() = default;
  TlsCredentials(const TlsCredentials&) = delete;
  TlsCredentials& operator=(const TlsCredentials&) = delete;
  ~TlsCredentials() {
    for (unsigned i = 0; i < count; ++i) gnutls_pcert_deinit(&certs[i]);
    if (key) gnutls_privkey_deinit(key);
  }
};

std::string GnutlsError(const char* what, int rc) {
  return std::string(what) + ": " + gnutls_strerror(rc);
}

// The DER public key of `pub`; "" on error.
std::string PublicKeyDer(gnutls_pubkey_t pub) {
  gnutls_datum_t der{};
  if (gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &der) < 0) return "";
  std::string out(reinterpret_cast<const char*>(der.data), der.size);
  gnutls_free(der.data);
  return out;
}

// Parses a PEM chain and key and checks that they belong together.
Result<std::shared_ptr<TlsCredentials>> LoadTlsCredentials(const std::string& cert_pem,
                                                           const std::string& key_pem) {
  auto creds = std::make_shared<TlsCredentials>();
  creds->certs.resize(16);
  unsigned max = static_cast<unsigned>(creds->certs.size());
  gnutls_datum_t cert{reinterpret_cast<unsigned char*>(const_cast<char*>(cert_pem.data())),
                      static_cast<unsigned>(cert_pem.size())};
  int rc =
      gnutls_pcert_list_import_x509_raw(creds->certs.data(), &max, &cert, GNUTLS_X509_FMT_PEM, 0);
  if (rc < 0 || max == 0) {
    return InvalidArgument(
        GnutlsError("TLS certificate", rc < 0 ? rc : GNUTLS_E_NO_CERTIFICATE_FOUND));
  }
  creds->count = max;
  if ((rc = gnutls_privkey_init(&creds->key)) < 0) return Internal(GnutlsError("TLS key", rc));
  gnutls_datum_t key{reinterpret_cast<unsigned char*>(const_cast<char*>(key_pem.data())),
                     static_cast<unsigned>(key_pem.size())};
  if ((rc = gnutls_privkey_import_x509_raw(creds->key, &key, GNUTLS_X509_FMT_PEM, nullptr, 0)) <
      0) {
    return InvalidArgument(GnutlsError("TLS key", rc));
  }
  gnutls_pubkey_t pub = nullptr;
  std::string from_key;
  if (gnutls_pubkey_init(&pub) >= 0) {
    if (gnutls_pubkey_import_privkey(pub, creds->key, 0, 0) >= 0) from_key = PublicKeyDer(pub);
    gnutls_pubkey_deinit(pub);
  }
  if (from_key.empty() || from_key != PublicKeyDer(creds->certs[0].pubkey)) {
    return InvalidArgument("TLS key does not match the certificate");
  }
  return creds;
}

// What identifies a version of a file: changes when it is replaced or rewritten.
std::string FileSignature(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return "";
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
         std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return InvalidArgument("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
#endif  // ASHIATO_HTTPS_SERVER

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  MHD_Daemon* daemon = nullptr;
  std::mutex streams_mu;
  bool stopping = false;                             // Guarded by streams_mu.
  std::unordered_set<ResponseStream*> live_streams;  // For Stop(): close them all.
  std::vector<std::weak_ptr<ResponseStream>> stream_refs;

  // Requests between their first access-handler call and completion.
  std::mutex active_mu;
  std::condition_variable active_cv;
  size_t active = 0;

  // TLS: the credentials new handshakes get, and those replaced lately
  // (a handshake in progress may still use them).
  mutable std::mutex tls_mu;
#if ASHIATO_HTTPS_SERVER
  std::shared_ptr<TlsCredentials> tls;
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::shared_ptr<TlsCredentials>>>
      tls_retired;
#endif
  std::string tls_signature;  // Files' signature of the last load attempt.
  std::atomic<uint64_t> tls_reloads{0};
  std::atomic<uint64_t> tls_reload_failures{0};
  std::thread tls_reloader;
  std::mutex reload_mu;
  std::condition_variable reload_cv;
  bool reload_stop = false;

  static MHD_Result Access(void* cls, MHD_Connection* connection, const char* url,
                           const char* method, const char* version, const char* upload_data,
                           size_t* upload_data_size, void** con_cls);
  static void Completed(void* cls, MHD_Connection* connection, void** con_cls,
                        MHD_RequestTerminationCode toe);
#if ASHIATO_HTTPS_SERVER
  static void Connection(void* cls, MHD_Connection* connection, void** socket_context,
                         MHD_ConnectionNotificationCode toe);
  static int Certificate(gnutls_session_t session, const gnutls_datum_t* req_ca_rdn, int nreqs,
                         const gnutls_pk_algorithm_t* pk_algos, int pk_algos_length,
                         gnutls_pcert_st** pcert, unsigned int* pcert_length,
                         gnutls_privkey_t* privkey);
#endif
  static ssize_t ReadStream(void* cls, uint64_t pos, char* buf, size_t max);
  static void FreeStream(void* cls);
  MHD_Result Queue(MHD_Connection* connection, RequestContext* ctx, HttpResponse response);
#if ASHIATO_HTTPS_SERVER
  // Loads the files if they changed since the last attempt; true if the
  // serving credentials were replaced.
  Result<bool> ReloadTlsFiles();
  void ReloadLoop();
#endif
};

namespace {

#if ASHIATO_HTTPS_SERVER
// The server whose event thread this is. Each MHD event thread belongs to
// one daemon and accepts its own connections, so the connection-start
// notification (on that thread, before the TLS handshake) sets it for the
// certificate callback, which has no closure argument.
thread_local HttpServer::Impl* tls_server_of_thread = nullptr;
#endif

// The answer to a request that arrives while the server stops.
HttpResponse ShuttingDown() {
  HttpResponse r =
      HttpResponse::Json(503, R"({"error":"the server is shutting down","code":"Unavailable"})");
  r.headers.emplace_back("Connection", "close");
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

MHD_Result CollectKeyValue(void* cls, MHD_ValueKind, const char* key, const char* value) {
  auto* map = static_cast<std::map<std::string, std::string>*>(cls);
  if (key != nullptr) (*map)[key] = value ? value : "";
  return MHD_YES;
}

MHD_Result CollectHeader(void* cls, MHD_ValueKind, const char* key, const char* value) {
  auto* map = static_cast<std::map<std::string, std::string>*>(cls);
  if (key == nullptr) return MHD_YES;
  std::string k = key;
  std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return std::tolower(c); });
  (*map)[k] = value ? value : "";
  return MHD_YES;
}

std::string RemoteAddress(MHD_Connection* connection) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (info == nullptr || info->client_addr == nullptr) return "";
  char host[INET6_ADDRSTRLEN] = {0};
  if (info->client_addr->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(info->client_addr);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    std::string out = host;
    out.append(":").append(std::to_string(ntohs(in->sin_port)));
    return out;
  }
  if (info->client_addr->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(info->client_addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    // Built by appends: GCC 12 warns (-Wrestrict) on the operator+ chain at -O2.
    std::string out = "[";
    out.append(host).append("]:").append(std::to_string(ntohs(in6->sin6_port)));
    return out;
  }
  return "";
}

}  // namespace

MHD_Result HttpServer::Impl::Access(void* cls, MHD_Connection* connection, const char* url,
                                    const char* method, const char*, const char* upload_data,
                                    size_t* upload_data_size, void** con_cls) {
  auto* self = static_cast<Impl*>(cls);
  auto* ctx = static_cast<RequestContext*>(*con_cls);
  if (ctx == nullptr) {
    ctx = new RequestContext();
    *con_cls = ctx;
    {
      std::lock_guard<std::mutex> lock(self->active_mu);
      ++self->active;
    }
    ctx->request.method = method ? method : "";
    ctx->request.path = url ? url : "/";
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, &CollectKeyValue,
                              &ctx->request.query);
    MHD_get_connection_values(connection, MHD_HEADER_KIND, &CollectHeader, &ctx->request.headers);
    ctx->request.remote_addr = RemoteAddress(connection);
    std::string length = ctx->request.Header("content-length");
    if (!length.empty()) {
      char* end = nullptr;
      unsigned long long n = std::strtoull(length.c_str(), &end, 10);
      if (n > self->options.max_body_bytes) {
        // Answer before reading the body; MHD closes the connection after.
        ctx->too_large = true;
        return self->Queue(connection, ctx,
                           HttpResponse::Json(413, R"({"error":"request body too large"})"));
      }
      if (n > 0) ctx->request.body.reserve(static_cast<size_t>(n));
    }
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    if (!ctx->too_large) {
      if (ctx->request.body.size() + *upload_data_size > self->options.max_body_bytes) {
        ctx->too_large = true;
        ctx->request.body.clear();
        ctx->request.body.shrink_to_fit();
      } else {
        ctx->request.body.append(upload_data, *upload_data_size);
      }
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (ctx->too_large) {
    return self->Queue(connection, ctx,
                       HttpResponse::Json(413, R"({"error":"request body too large"})"));
  }
  bool stopping;
  {
    std::lock_guard<std::mutex> lock(self->streams_mu);
    stopping = self->stopping;
  }
  if (stopping) return self->Queue(connection, ctx, ShuttingDown());
  HttpResponse response;
  try {
    response = self->handler(ctx->request);
  } catch (const std::exception& e) {
    response = HttpResponse::Json(500, R"({"error":"internal error"})");
  }
  return self->Queue(connection, ctx, std::move(response));
}

MHD_Result HttpServer::Impl::Queue(MHD_Connection* connection, RequestContext* ctx,
                                   HttpResponse response) {
  MHD_Response* r = nullptr;
  if (response.stream) {
    std::unique_lock<std::mutex> lock(streams_mu);
    if (stopping) {
      // Stop() has closed every stream it knows of: this one would be left
      // suspended, and MHD cannot stop with a suspended connection.
      lock.unlock();
      response.stream->MarkClientGone();
      response = ShuttingDown();
    }
  }
  if (response.stream) {
    auto* sc = new StreamContext();
    sc->stream = response.stream;
    ctx->stream = response.stream;
    MHD_Connection* conn = connection;
    {
      std::lock_guard<std::mutex> lock(streams_mu);
      // Attached under streams_mu, so Stop() either sees this stream (and
      // closes it) or this code sees `stopping` above.
      response.stream->AttachHooks([conn]() { MHD_suspend_connection(conn); },
                                   [conn]() { MHD_resume_connection(conn); });
      live_streams.insert(response.stream.get());
      stream_refs.push_back(response.stream);
      if (stream_refs.size() > 2 * live_streams.size() + 64) {
        stream_refs.erase(std::remove_if(stream_refs.begin(), stream_refs.end(),
                                         [](const auto& w) { return w.expired(); }),
                          stream_refs.end());
      }
    }
    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, &Impl::ReadStream, sc,
                                          &Impl::FreeStream);
  } else {
    r = MHD_create_response_from_buffer(
        response.body.size(), const_cast<char*>(response.body.data()), MHD_RESPMEM_MUST_COPY);
  }
  if (r == nullptr) return MHD_NO;
  if (!response.content_type.empty()) {
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, response.content_type.c_str());
  }
  for (const auto& [k, v] : response.headers) MHD_add_response_header(r, k.c_str(), v.c_str());
  MHD_Result ret = MHD_queue_response(connection, static_cast<unsigned>(response.status), r);
  MHD_destroy_response(r);
  return ret;
}

ssize_t HttpServer::Impl::ReadStream(void* cls, uint64_t, char* buf, size_t max) {
  auto* sc = static_cast<StreamContext*>(cls);
  long n = sc->stream->ReadForServer(buf, max);
  if (n < 0) return MHD_CONTENT_READER_END_OF_STREAM;
  return static_cast<ssize_t>(n);
}

void HttpServer::Impl::FreeStream(void* cls) {
  auto* sc = static_cast<StreamContext*>(cls);
  sc->stream->AttachHooks(nullptr, nullptr);
  sc->stream->MarkClientGone();
  delete sc;
}

void HttpServer::Impl::Completed(void* cls, MHD_Connection*, void** con_cls,
                                 MHD_RequestTerminationCode) {
  auto* self = static_cast<Impl*>(cls);
  auto* ctx = static_cast<RequestContext*>(*con_cls);
  if (ctx == nullptr) return;
  if (ctx->stream) {
    ctx->stream->MarkClientGone();
    std::lock_guard<std::mutex> lock(self->streams_mu);
    self->live_streams.erase(ctx->stream.get());
  }
  delete ctx;
  *con_cls = nullptr;
  {
    std::lock_guard<std::mutex> lock(self->active_mu);
    --self->active;
  }
  self->active_cv.notify_all();
}

#if ASHIATO_HTTPS_SERVER
void HttpServer::Impl::Connection(void* cls, MHD_Connection*, void**,
                                  MHD_ConnectionNotificationCode toe) {
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) tls_server_of_thread = static_cast<Impl*>(cls);
}

int HttpServer::Impl::Certificate(gnutls_session_t, const gnutls_datum_t*, int,
                                  const gnutls_pk_algorithm_t*, int, gnutls_pcert_st** pcert,
                                  unsigned int* pcert_length, gnutls_privkey_t* privkey) {
  Impl* self = tls_server_of_thread;
  if (self == nullptr) return -1;
  std::lock_guard<std::mutex> lock(self->tls_mu);
  if (!self->tls) return -1;
  // GnuTLS neither copies nor frees these: they stay alive in `tls`, or in
  // `tls_retired` for a while after a reload.
  *pcert = self->tls->certs.data();
  *pcert_length = self->tls->count;
  *privkey = self->tls->key;
  return 0;
}

Result<bool> HttpServer::Impl::ReloadTlsFiles() {
  std::string signature =
      FileSignature(options.tls_cert_file) + "|" + FileSignature(options.tls_key_file);
  {
    std::lock_guard<std::mutex> lock(tls_mu);
    if (signature == tls_signature) return false;
    tls_signature = signature;
  }
  auto cert = ReadWholeFile(options.tls_cert_file);
  if (!cert.ok()) return cert.status();
  auto key = ReadWholeFile(options.tls_key_file);
  if (!key.ok()) return key.status();
  auto creds = LoadTlsCredentials(*cert, *key);
  if (!creds.ok()) {
    return Status(creds.status().code(), options.tls_cert_file + ", " + options.tls_key_file +
                                             ": " + creds.status().message());
  }
  std::lock_guard<std::mutex> lock(tls_mu);
  auto now = std::chrono::steady_clock::now();
  if (tls) tls_retired.emplace_back(now, std::move(tls));
  // A handshake takes milliseconds; a minute is far beyond any in progress.
  while (!tls_retired.empty() &&
         (tls_retired.size() > 64 || now - tls_retired.front().first > std::chrono::minutes(1))) {
    tls_retired.pop_front();
  }
  tls = std::move(creds.value());
  return true;
}

void HttpServer::Impl::ReloadLoop() {
  std::unique_lock<std::mutex> lock(reload_mu);
  while (!reload_stop) {
    reload_cv.wait_for(lock, options.tls_reload_interval, [this] { return reload_stop; });
    if (reload_stop) break;
    lock.unlock();
    auto r = ReloadTlsFiles();
    if (!r.ok()) {
      tls_reload_failures.fetch_add(1);
      spdlog::warn("TLS certificate not reloaded, still serving the previous one: {}",
                   r.status().message());
    } else if (*r) {
      tls_reloads.fetch_add(1);
      spdlog::info("TLS certificate reloaded from {}", options.tls_cert_file);
    }
    lock.lock();
  }
}
#endif  // ASHIATO_HTTPS_SERVER

Result<std::pair<std::string, uint16_t>> ParseListenAddress(const std::string& listen) {
  std::string host;
  std::string port_text = listen;
  auto colon = listen.rfind(':');
  if (colon != std::string::npos) {
    host = listen.substr(0, colon);
    port_text = listen.substr(colon + 1);
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (port_text.empty() ||
      !std::all_of(port_text.begin(), port_text.end(), [](char c) { return std::isdigit(c); })) {
    return InvalidArgument("invalid listen address '" + listen + "': want host:port or :port");
  }
  unsigned long port = std::stoul(port_text);
  if (port > 65535) return InvalidArgument("invalid port in '" + listen + "'");
  return std::make_pair(host, static_cast<uint16_t>(port));
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                      HttpHandler handler) {
  auto addr = ParseListenAddress(options.listen);
  if (!addr.ok()) return addr.status();
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(addr->second);
  std::string host = addr->first;
  if (host.empty() || host == "0.0.0.0" || host == "*") {
    sin.sin_addr.s_addr = htonl(INADDR_ANY);
  } else if (host == "localhost") {
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  } else if (inet_pton(AF_INET, host.c_str(), &sin.sin_addr) != 1) {
    return InvalidArgument("invalid listen host '" + host + "': want an IPv4 address");
  }

  std::unique_ptr<HttpServer> server(new HttpServer());
  server->impl_ = std::make_unique<Impl>();
  Impl* impl = server->impl_.get();
  impl->options = options;
  impl->handler = std::move(handler);

  bool tls_files = !options.tls_cert_file.empty() || !options.tls_key_file.empty();
  bool tls = tls_files || (!options.tls_cert_pem.empty() && !options.tls_key_pem.empty());
#if !ASHIATO_HTTPS_SERVER
  if (tls_files || !options.tls_cert_pem.empty() || !options.tls_key_pem.empty()) {
    return FailedPrecondition("this build serves plain HTTP only (no TLS): drop the certificate");
  }
#else
  if (tls_files) {
    if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
      return InvalidArgument("TLS needs both a certificate file and a key file");
    }
    auto loaded = impl->ReloadTlsFiles();
    if (!loaded.ok()) return loaded.status();
  } else if (tls) {
    auto creds = LoadTlsCredentials(options.tls_cert_pem, options.tls_key_pem);
    if (!creds.ok()) return creds.status();
    impl->tls = std::move(creds.value());
  }
  if (tls && MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) != MHD_YES) {
    return FailedPrecondition("this libmicrohttpd cannot serve HTTPS with a certificate callback");
  }
#endif

  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
  if (tls) flags |= MHD_USE_TLS;

  std::vector<MHD_OptionItem> opts;
  opts.push_back({MHD_OPTION_SOCK_ADDR, 0, &sin});
  opts.push_back(
      {MHD_OPTION_CONNECTION_LIMIT, static_cast<intptr_t>(options.max_connections), nullptr});
  opts.push_back({MHD_OPTION_CONNECTION_TIMEOUT,
                  static_cast<intptr_t>(options.connection_timeout_seconds), nullptr});
  opts.push_back({MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&Impl::Completed), impl});
  opts.push_back({MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096, nullptr});
  if (options.connection_memory_bytes > 0) {
    opts.push_back({MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                    static_cast<intptr_t>(options.connection_memory_bytes), nullptr});
  }
  if (options.threads > 1) {
    opts.push_back({MHD_OPTION_THREAD_POOL_SIZE, static_cast<intptr_t>(options.threads), nullptr});
  }
#if ASHIATO_HTTPS_SERVER
  if (tls) {
    // The certificate comes from a callback (not MHD_OPTION_HTTPS_MEM_*) so
    // that a reload reaches new handshakes without restarting the daemon.
    opts.push_back(
        {MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(&Impl::Connection), impl});
    opts.push_back({MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
                    reinterpret_cast<void*>(
                        static_cast<gnutls_certificate_retrieve_function2*>(&Impl::Certificate))});
  }
#endif
  opts.push_back({MHD_OPTION_END, 0, nullptr});

  impl->daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, &Impl::Access, impl, MHD_OPTION_ARRAY,
                                  opts.data(), MHD_OPTION_END);
  if (impl->daemon == nullptr) {
    return Unavailable("cannot listen on " + options.listen +
                       " (address in use, not permitted, or TLS material invalid)");
  }
  const MHD_DaemonInfo* info = MHD_get_daemon_info(impl->daemon, MHD_DAEMON_INFO_BIND_PORT);
  server->port_ = info ? info->port : addr->second;
#if ASHIATO_HTTPS_SERVER
  if (tls_files && options.tls_reload_interval.count() > 0) {
    impl->tls_reloader = std::thread([impl] { impl->ReloadLoop(); });
  }
#endif
  return server;
}

uint64_t HttpServer::tls_reloads() const { return impl_ ? impl_->tls_reloads.load() : 0; }
uint64_t HttpServer::tls_reload_failures() const {
  return impl_ ? impl_->tls_reload_failures.load() : 0;
}

void HttpServer::Stop() {
  if (!impl_) return;
  if (impl_->tls_reloader.joinable()) {
    {
      std::lock_guard<std::mutex> lock(impl_->reload_mu);
      impl_->reload_stop = true;
    }
    impl_->reload_cv.notify_all();
    impl_->tls_reloader.join();
  }
  if (impl_->daemon == nullptr) return;
  MHD_Daemon* d = impl_->daemon;
  // No MHD_quiesce_daemon: with a pool of epoll threads it races the
  // threads' own removal of the listening socket from their epoll sets and
  // aborts ("Failed to remove listen FD from epoll set"). The daemon keeps
  // accepting until MHD_stop_daemon; what arrives meanwhile is answered 503.
  //
  // MHD aborts too if it stops with a suspended connection: end every
  // stream (a closed stream never suspends again), and from here on refuse
  // new ones (Queue checks `stopping` under the same lock).
  {
    std::lock_guard<std::mutex> lock(impl_->streams_mu);
    impl_->stopping = true;
    for (auto& w : impl_->stream_refs) {
      if (auto s = w.lock()) s->Close();
    }
  }
  // Requests being handled finish and their answers go out, within reason.
  {
    std::unique_lock<std::mutex> lock(impl_->active_mu);
    impl_->active_cv.wait_for(lock, impl_->options.stop_grace,
                              [this] { return impl_->active == 0; });
  }
  MHD_stop_daemon(d);
  impl_->daemon = nullptr;
}

HttpServer::~HttpServer() { Stop(); }

}  // namespace ashiato
