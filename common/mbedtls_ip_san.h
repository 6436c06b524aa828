// Only where libcurl runs on mbedTLS 2.28 (the static agent, ASHIATO_CURL_MBEDTLS):
// mbedTLS 2.28 checks the name curl connects to against the certificate's DNS
// names and CN only, so a server addressed by IP (the in-cluster API server at
// https://10.96.0.1, a kubeconfig's https://127.0.0.1:6443) would always fail
// verification. This puts back the rule of RFC 6125 and of OpenSSL, and of
// mbedTLS 3: for an IP literal, an iPAddress SAN equal to it is the match.
#ifndef ASHIATO_COMMON_MBEDTLS_IP_SAN_H_
#define ASHIATO_COMMON_MBEDTLS_IP_SAN_H_

#include <curl/curl.h>

#include <cstddef>
#include <string>

namespace ashiato {

// The address a request's URL names, when its host is an IP literal.
struct IpLiteral {
  unsigned char bytes[16];
  size_t len = 0;  // 4 (IPv4), 16 (IPv6), 0: the host is a name.
};

// For an https:// URL whose host is an IP literal, makes `c` accept a server
// certificate whose iPAddress SAN equals it, in place of the DNS-name match
// mbedTLS cannot make; every other check (chain, expiry, key) is untouched.
// `ip` must outlive the transfer.
void MatchIpSanForIpHosts(CURL* c, const std::string& url, IpLiteral* ip);

}  // namespace ashiato

#endif  // ASHIATO_COMMON_MBEDTLS_IP_SAN_H_
