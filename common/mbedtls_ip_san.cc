#include "common/mbedtls_ip_san.h"

#include <arpa/inet.h>
#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509.h>
#include <mbedtls/x509_crt.h>

#include <cstring>

namespace ashiato {
namespace {

// The host of an https:// URL, brackets of an IPv6 literal removed; "" for
// another scheme or a URL curl cannot parse.
std::string HttpsHost(const std::string& url) {
  CURLU* u = curl_url();
  if (u == nullptr) return "";
  std::string host;
  char *scheme = nullptr, *h = nullptr;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      std::strcmp(scheme, "https") == 0 && curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK) {
    host = h;
  }
  curl_free(scheme);
  curl_free(h);
  curl_url_cleanup(u);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    // A zone ("fe80::1%eth0") is not part of the address a SAN names.
    host = host.substr(0, host.find('%'));
  }
  return host;
}

// mbedTLS's verify callback, once per certificate of the verified chain: the
// end-entity certificate (depth 0) carries the name-mismatch flag when no DNS
// name matched; an iPAddress SAN equal to the address clears it.
int VerifyIpSan(void* ctx, mbedtls_x509_crt* crt, int depth, uint32_t* flags) {
  const auto* ip = static_cast<const IpLiteral*>(ctx);
  if (depth != 0 || (*flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) == 0) return 0;
  if ((crt->ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME) == 0) return 0;
  constexpr int kIpAddressTag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_IP_ADDRESS;
  for (const mbedtls_x509_sequence* san = &crt->subject_alt_names; san != nullptr;
       san = san->next) {
    if (san->buf.tag == kIpAddressTag && san->buf.len == ip->len &&
        std::memcmp(san->buf.p, ip->bytes, ip->len) == 0) {
      *flags &= ~static_cast<uint32_t>(MBEDTLS_X509_BADCERT_CN_MISMATCH);
      break;
    }
  }
  return 0;
}

CURLcode OnSslConfig(CURL*, void* ssl_config, void* ip) {
  mbedtls_ssl_conf_verify(static_cast<mbedtls_ssl_config*>(ssl_config), VerifyIpSan, ip);
  return CURLE_OK;
}

}  // namespace

void MatchIpSanForIpHosts(CURL* c, const std::string& url, IpLiteral* ip) {
  ip->len = 0;
  const std::string host = HttpsHost(url);
  if (host.empty()) return;
  if (inet_pton(AF_INET, host.c_str(), ip->bytes) == 1) {
    ip->len = 4;
  } else if (inet_pton(AF_INET6, host.c_str(), ip->bytes) == 1) {
    ip->len = 16;
  } else {
    return;  // A name: mbedTLS matches it itself.
  }
  curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, OnSslConfig);
  curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, ip);
}

}  // namespace ashiato
