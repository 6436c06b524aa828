// The stdout of a kubeconfig `exec` credential plugin (an ExecCredential
// JSON), as TokenSource reads it: ParseExecCredential.
//
// Invariants: an accepted credential has a token or a client certificate;
// an expiration time, when present, round-trips through RFC 3339.
#include "common/kube_client.h"
#include "common/time_util.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ashiato;
  std::string_view text = fuzz::AsText(data, size);
  for (const char* version :
       {"client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"}) {
    auto cred = ParseExecCredential(text, version, "plugin");
    if (!cred.ok()) {
      FUZZ_CHECK(cred.status().code() == StatusCode::kInvalidArgument, cred.status().ToString());
      continue;
    }
    FUZZ_CHECK(!cred->token.empty() || !cred->client_certificate_pem.empty(), "empty credential");
    if (cred->expires) {
      auto back = ParseRfc3339(FormatRfc3339Micros(*cred->expires));
      FUZZ_CHECK(back.has_value(), "FormatRfc3339Micros output does not parse");
    }
  }
  return 0;
}
