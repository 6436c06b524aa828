// HttpServer: a small HTTP/1.1 server on libmicrohttpd in epoll mode, so one
// thread holds thousands of idle keep-alive and watch connections.
//
// Handlers run on the server's event thread(s): they must not block. A
// long-lived response (a watch) returns a ResponseStream that other threads
// write to; the server sends it chunked and parks the connection (suspend)
// while the stream is empty.
//
// HTTPS (GnuTLS) from PEM text or from files; files are re-read when they
// change (cert-manager and the kubelet rotate them), and new handshakes use
// the new certificate while open connections keep theirs. The static agent's
// build (ASHIATO_HTTPS_SERVER=0) has no GnuTLS: Start() then refuses TLS
// options with FailedPrecondition.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"

namespace ashiato {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // URL path without the query, percent-decoded.
  std::map<std::string, std::string> query;    // Decoded query arguments (last one wins).
  std::map<std::string, std::string> headers;  // Header names lower-cased.
  std::string body;
  std::string remote_addr;  // "127.0.0.1:53412".

  // Returns the query argument or `def` when absent.
  std::string Query(const std::string& key, const std::string& def = "") const;
  // Returns the header (name in any case) or "" when absent.
  std::string Header(const std::string& name) const;
};

// A chunked response body written by another thread. Thread-safe.
class ResponseStream {
 public:
  // Queues `data`. Returns false once the client has gone or the stream is
  // closed: the writer should stop and drop its reference.
  bool Write(std::string data);
  // Ends the response after what was queued has been sent.
  void Close();
  // True once the client went away or Close() was called.
  bool done() const;
  // Bytes queued but not yet handed to the socket.
  size_t pending_bytes() const;

  // --- Used by HttpServer only. ---
  explicit ResponseStream(size_t max_pending_bytes = 64 << 20);
  ~ResponseStream();
  // Copies up to `max` bytes into `buf`. Returns bytes copied, 0 when empty
  // (caller suspends), -1 at the end of the stream.
  long ReadForServer(char* buf, size_t max);
  // `suspend` parks the connection (called under the stream lock on an empty
  // read); `resume` wakes it (called under the lock by the next write).
  void AttachHooks(std::function<void()> suspend, std::function<void()> resume);
  void MarkClientGone();

 private:
  mutable std::mutex mu_;
  std::string buffer_;
  size_t offset_ = 0;
  size_t max_pending_;
  bool closed_ = false;
  bool client_gone_ = false;
  bool suspended_ = false;
  std::function<void()> suspend_;
  std::function<void()> resume_;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is streamed chunked from here and `body` is ignored.
  std::shared_ptr<ResponseStream> stream;

  static HttpResponse Json(int status, std::string body);
  static HttpResponse Text(int status, std::string body);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  // "127.0.0.1:0", ":8080" (all interfaces) or "0.0.0.0:8080". Port 0 picks a free port.
  std::string listen = "127.0.0.1:0";
  // Connections beyond this are refused at accept.
  unsigned max_connections = 20000;
  // Request bodies larger than this get 413 without reaching the handler.
  size_t max_body_bytes = 8 << 20;
  // Memory MHD keeps per connection for headers and read/write buffers
  // (0 = libmicrohttpd's default, 32 KiB). Bodies are collected outside it.
  size_t connection_memory_bytes = 0;
  // Idle connections are closed after this many seconds (0 = never).
  unsigned connection_timeout_seconds = 0;
  // Event-loop threads (each runs its own epoll set).
  unsigned threads = 1;
  // PEM certificate (chain) and key: serve HTTPS when both are set.
  std::string tls_cert_pem;
  std::string tls_key_pem;
  // Or files with the same (take precedence over the PEM text): serve HTTPS,
  // and re-read them when their inode, size or mtime changes, checked every
  // tls_reload_interval. A pair that does not load (a key that does not
  // match the certificate, say, half-way through a rotation) is ignored and
  // the previous one kept until the files change again.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::chrono::milliseconds tls_reload_interval{std::chrono::seconds(10)};
  // Stop(): how long requests being handled (and closed streams still
  // draining) get to finish before every connection is closed.
  std::chrono::milliseconds stop_grace{std::chrono::seconds(2)};
};

class HttpServer {
 public:
  // Binds, starts serving and returns. Fails with a clear message if the
  // address is taken or invalid.
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                   HttpHandler handler);
  ~HttpServer();  // Stops.

  // The bound port (useful with port 0).
  uint16_t port() const { return port_; }
  // Ends every open stream, answers new requests 503 (Connection: close),
  // waits up to stop_grace for requests being handled, then closes every
  // connection and returns when the threads are gone. Safe with requests in
  // flight, suspended streams and clients connecting meanwhile. Idempotent.
  void Stop();
  // Certificate loads that replaced the serving certificate after Start
  // (0 without TLS files).
  uint64_t tls_reloads() const;
  // Changed files that did not load (the previous certificate stays).
  uint64_t tls_reload_failures() const;

  struct Impl;

 private:
  HttpServer() = default;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

// Parses "host:port", ":port" or "port". Empty host means all interfaces.
Result<std::pair<std::string, uint16_t>> ParseListenAddress(const std::string& listen);

}  // namespace ashiato
