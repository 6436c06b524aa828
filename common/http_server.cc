#include "common/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
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

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  MHD_Daemon* daemon = nullptr;
  std::mutex streams_mu;
  std::unordered_set<ResponseStream*> live_streams;  // For Stop(): close them all.
  std::vector<std::weak_ptr<ResponseStream>> stream_refs;

  static MHD_Result Access(void* cls, MHD_Connection* connection, const char* url,
                           const char* method, const char* version, const char* upload_data,
                           size_t* upload_data_size, void** con_cls);
  static void Completed(void* cls, MHD_Connection* connection, void** con_cls,
                        MHD_RequestTerminationCode toe);
  static ssize_t ReadStream(void* cls, uint64_t pos, char* buf, size_t max);
  static void FreeStream(void* cls);
  MHD_Result Queue(MHD_Connection* connection, RequestContext* ctx, HttpResponse response);
};

namespace {

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
    auto* sc = new StreamContext();
    sc->stream = response.stream;
    ctx->stream = response.stream;
    MHD_Connection* conn = connection;
    response.stream->AttachHooks([conn]() { MHD_suspend_connection(conn); },
                                 [conn]() { MHD_resume_connection(conn); });
    {
      std::lock_guard<std::mutex> lock(streams_mu);
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
}

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

  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
  bool tls = !options.tls_cert_pem.empty() && !options.tls_key_pem.empty();
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
  if (tls) {
    opts.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, const_cast<char*>(options.tls_key_pem.c_str())});
    opts.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, const_cast<char*>(options.tls_cert_pem.c_str())});
  }
  opts.push_back({MHD_OPTION_END, 0, nullptr});

  impl->daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, &Impl::Access, impl, MHD_OPTION_ARRAY,
                                  opts.data(), MHD_OPTION_END);
  if (impl->daemon == nullptr) {
    return Unavailable("cannot listen on " + options.listen +
                       " (address in use, not permitted, or TLS material invalid)");
  }
  const MHD_DaemonInfo* info = MHD_get_daemon_info(impl->daemon, MHD_DAEMON_INFO_BIND_PORT);
  server->port_ = info ? info->port : addr->second;
  return server;
}

void HttpServer::Stop() {
  if (!impl_ || impl_->daemon == nullptr) return;
  MHD_Daemon* d = impl_->daemon;
  // Stop accepting, then end every open stream so suspended connections
  // resume and finish instead of holding the daemon up.
  MHD_socket listen_fd = MHD_quiesce_daemon(d);  // Ours to close now.
  {
    std::lock_guard<std::mutex> lock(impl_->streams_mu);
    for (auto& w : impl_->stream_refs) {
      if (auto s = w.lock()) s->Close();
    }
  }
  MHD_stop_daemon(d);
  if (listen_fd != MHD_INVALID_SOCKET) close(listen_fd);
  impl_->daemon = nullptr;
}

HttpServer::~HttpServer() { Stop(); }

}  // namespace ashiato
