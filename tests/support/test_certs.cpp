#include "tests/support/test_certs.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>

namespace fetchrelay::test {
namespace {

struct bio_deleter { void operator()(BIO* b) const { BIO_free(b); } };
struct key_deleter { void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); } };
struct x509_deleter { void operator()(X509* x) const { X509_free(x); } };
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;
using key_ptr = std::unique_ptr<EVP_PKEY, key_deleter>;
using x509_ptr = std::unique_ptr<X509, x509_deleter>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("OpenSSL failed: ") + what);
}

std::string bio_text(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string key_pem(EVP_PKEY* k) {
  bio_ptr b(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr) == 1, "write key");
  return bio_text(b.get());
}

std::string cert_pem(X509* x) {
  bio_ptr b(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509(b.get(), x) == 1, "write cert");
  return bio_text(b.get());
}

key_ptr read_key(const std::string& pem) {
  bio_ptr b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return key_ptr(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
}

x509_ptr read_cert(const std::string& pem) {
  bio_ptr b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return x509_ptr(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  check(ext != nullptr, "extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

x509_ptr new_cert(EVP_PKEY* key, const std::string& cn, long serial) {
  x509_ptr x(X509_new());
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 86400);
  X509_set_pubkey(x.get(), key);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return x;
}

}  // namespace

pem_pair make_test_ca(const std::string& common_name) {
  key_ptr key(EVP_EC_gen("P-256"));
  check(key != nullptr, "EC key");
  auto x = new_cert(key.get(), common_name, 1);
  X509_set_issuer_name(x.get(), X509_get_subject_name(x.get()));
  add_ext(x.get(), x.get(), NID_basic_constraints, "critical,CA:TRUE");
  add_ext(x.get(), x.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  add_ext(x.get(), x.get(), NID_subject_key_identifier, "hash");
  check(X509_sign(x.get(), key.get(), EVP_sha256()) > 0, "sign CA");
  return {cert_pem(x.get()), key_pem(key.get())};
}

pem_pair make_test_leaf(const pem_pair& ca, const std::vector<std::string>& dns_names,
                        const std::vector<std::string>& ip_addresses) {
  auto ca_key = read_key(ca.key);
  auto ca_cert = read_cert(ca.cert);
  check(ca_key && ca_cert, "read CA");
  key_ptr key(EVP_EC_gen("P-256"));
  auto x = new_cert(key.get(), dns_names.empty() ? ip_addresses.at(0) : dns_names[0], 2);
  X509_set_issuer_name(x.get(), X509_get_subject_name(ca_cert.get()));
  std::string san;
  for (const auto& d : dns_names) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
  for (const auto& ip : ip_addresses) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
  add_ext(x.get(), ca_cert.get(), NID_subject_alt_name, san);
  add_ext(x.get(), ca_cert.get(), NID_basic_constraints, "CA:FALSE");
  add_ext(x.get(), ca_cert.get(), NID_ext_key_usage, "serverAuth");
  check(X509_sign(x.get(), ca_key.get(), EVP_sha256()) > 0, "sign leaf");
  return {cert_pem(x.get()), key_pem(key.get())};
}

}  // namespace fetchrelay::test
