#include "dev_cert.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/bn.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <memory>
#include <stdexcept>

namespace kith::server {
namespace {

template <class T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Free<X509, X509_free>>;

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("cannot make the development certificate: " + what);
}

bool still_valid(const std::filesystem::path& cert_path) {
  std::unique_ptr<FILE, FileCloser> f(std::fopen(cert_path.c_str(), "r"));
  if (!f) return false;
  Cert cert(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
  if (!cert) return false;
  // Renew a week before expiry.
  std::time_t week = std::time(nullptr) + 7 * 24 * 3600;
  return X509_cmp_time(X509_get0_notAfter(cert.get()), &week) > 0;
}

void write_pem(const std::filesystem::path& path, mode_t mode, auto&& writer) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::unique_ptr<FILE, FileCloser> f(std::fopen(tmp.c_str(), "w"));
    if (!f) fail("cannot write " + tmp.string() + "; check that the data directory is writable");
    if (::fchmod(fileno(f.get()), mode) != 0) fail("cannot set the mode of " + tmp.string());
    if (!writer(f.get())) fail("cannot write " + tmp.string());
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) fail("cannot write " + path.string() + ": " + ec.message());
}

}  // namespace

CertFiles ensure_dev_cert(const std::filesystem::path& data_dir) {
  CertFiles files{data_dir / "dev-cert.pem", data_dir / "dev-key.pem"};
  if (std::filesystem::exists(files.key) && still_valid(files.cert)) return files;

  PKey key(EVP_EC_gen("P-256"));
  if (!key) fail("key generation failed");
  Cert cert(X509_new());
  if (!cert) fail("out of memory");
  X509_set_version(cert.get(), 2);
  // A random positive serial, so that a renewed certificate never repeats one.
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) fail("no randomness");
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()))) fail("bad serial");
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("kithd development"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                            std::pair{NID_key_usage, "critical,digitalSignature,keyCertSign"},
                            std::pair{NID_ext_key_usage, "serverAuth"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ext) fail("bad certificate extension");
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) fail("signing failed");

  write_pem(files.key, 0600, [&](FILE* f) {
    return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
  });
  write_pem(files.cert, 0644, [&](FILE* f) { return PEM_write_X509(f, cert.get()) == 1; });
  return files;
}

}  // namespace kith::server
