// A self-signed CA and a serving certificate for 127.0.0.1 / localhost,
// made in-process with OpenSSL, so kubesim can serve HTTPS with no files.
#pragma once

#include <string>

#include "common/status.h"

namespace kubesim {

struct TlsMaterial {
  std::string ca_pem;    // CA certificate (goes into the kubeconfig).
  std::string cert_pem;  // Serving certificate, signed by the CA.
  std::string key_pem;   // Serving key (PKCS#8).
};

// ECDSA P-256 keys; valid for a year; SANs IP:127.0.0.1, DNS:localhost.
ashiato::Result<TlsMaterial> GenerateTlsMaterial();

}  // namespace kubesim
