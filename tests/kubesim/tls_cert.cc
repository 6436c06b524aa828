#include "tests/kubesim/tls_cert.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace kubesim {
namespace {

struct Deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
};
template <typename T>
using Ptr = std::unique_ptr<T, Deleter>;

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

bool AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return false;
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return true;
}

Ptr<X509> NewCert(const char* cn, long serial, EVP_PKEY* key) {
  Ptr<X509> cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  return cert;
}

}  // namespace

ashiato::Result<TlsMaterial> GenerateTlsMaterial() {
  Ptr<EVP_PKEY> ca_key(EVP_EC_gen("P-256"));
  Ptr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (!ca_key || !key) return ashiato::Internal("cannot generate EC keys");

  Ptr<X509> ca = NewCert("kubesim-ca", 1, ca_key.get());
  X509_set_issuer_name(ca.get(), X509_get_subject_name(ca.get()));
  bool ok =
      AddExt(ca.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE") &&
      AddExt(ca.get(), ca.get(), NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") &&
      AddExt(ca.get(), ca.get(), NID_subject_key_identifier, "hash");
  if (!ok || X509_sign(ca.get(), ca_key.get(), EVP_sha256()) == 0)
    return ashiato::Internal("cannot sign CA");

  Ptr<X509> cert = NewCert("kubesim", 2, key.get());
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.get()));
  ok = AddExt(cert.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE") &&
       AddExt(cert.get(), ca.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
       AddExt(cert.get(), ca.get(), NID_ext_key_usage, "serverAuth") &&
       AddExt(cert.get(), ca.get(), NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost") &&
       AddExt(cert.get(), ca.get(), NID_authority_key_identifier, "keyid:always");
  if (!ok || X509_sign(cert.get(), ca_key.get(), EVP_sha256()) == 0) {
    return ashiato::Internal("cannot sign serving certificate");
  }

  TlsMaterial m;
  Ptr<BIO> b1(BIO_new(BIO_s_mem())), b2(BIO_new(BIO_s_mem())), b3(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(b1.get(), ca.get());
  PEM_write_bio_X509(b2.get(), cert.get());
  PEM_write_bio_PrivateKey(b3.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  m.ca_pem = BioText(b1.get());
  m.cert_pem = BioText(b2.get());
  m.key_pem = BioText(b3.get());
  return m;
}

}  // namespace kubesim
