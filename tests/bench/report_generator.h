// Simulated agents for the benchmarks: POSTs of encoded reports
// (common/report.h) to an aggregator over a pool of keep-alive connections
// (curl multi), as many agents would send them.
#pragma once

#include <curl/curl.h>

#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace ashiato::bench {

struct Post {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string body;
  size_t records = 0;
};

inline size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

// A body to send and the records it carries.
struct Body {
  std::string json;
  size_t records = 0;
};

struct SendResult {
  size_t ok = 0, failed = 0, ok_records = 0;
};

// Many simulated agents: POSTs over a pool of keep-alive connections
// (curl multi), `parallel` in flight at once.
class Generator {
 public:
  Generator(std::string url, int connections) : url_(std::move(url)) {
    multi_ = curl_multi_init();
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(connections));
    curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(connections));
  }
  ~Generator() { curl_multi_cleanup(multi_); }

  // Sends what `next` yields until it returns false, `parallel` in flight.
  SendResult Send(const std::function<bool(Body*)>& next, size_t parallel) {
    SendResult result;
    size_t active = 0;
    bool more = true;
    int running = 0;
    while (more || active > 0) {
      while (more && active < parallel) {
        Body b;
        if (!next(&b)) {
          more = false;
          break;
        }
        curl_multi_add_handle(multi_, NewPost(std::move(b))->easy);
        ++active;
      }
      curl_multi_perform(multi_, &running);
      int msgs = 0;
      while (CURLMsg* m = curl_multi_info_read(multi_, &msgs)) {
        if (m->msg != CURLMSG_DONE) continue;
        long code = 0;
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
        Post* p = nullptr;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
        if (m->data.result == CURLE_OK && code >= 200 && code < 300) {
          ++result.ok;
          result.ok_records += p->records;
        } else {
          if (result.failed++ < 5) {
            std::fprintf(stderr, "POST failed: curl %d, HTTP %ld\n", m->data.result, code);
          }
        }
        curl_multi_remove_handle(multi_, m->easy_handle);
        curl_easy_cleanup(p->easy);
        curl_slist_free_all(p->headers);
        delete p;
        --active;
      }
      if (active > 0) curl_multi_poll(multi_, nullptr, 0, 50, nullptr);
    }
    return result;
  }

  SendResult SendAll(std::vector<Body>& bodies, size_t parallel) {
    size_t i = 0;
    return Send(
        [&](Body* b) {
          if (i == bodies.size()) return false;
          *b = std::move(bodies[i++]);
          return true;
        },
        parallel);
  }

 private:
  Post* NewPost(Body b) {
    auto* p = new Post();
    p->body = std::move(b.json);
    p->records = b.records;
    p->easy = curl_easy_init();
    curl_easy_setopt(p->easy, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, p->body.data());
    curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(p->body.size()));
    curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, &Discard);
    curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(p->easy, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(p->easy, CURLOPT_PRIVATE, p);
    p->headers = curl_slist_append(nullptr, "Content-Type: application/json");
    p->headers = curl_slist_append(p->headers, "Authorization: Bearer bench");
    p->headers = curl_slist_append(p->headers, "Expect:");
    curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, p->headers);
    return p;
  }

  std::string url_;
  CURLM* multi_;
};

}  // namespace ashiato::bench
