// Self-signed TLS certificates made on the spot, for tests that run a TLS server on loopback:
// the transport's own tests, and kithd started with --tls-cert/--tls-key instead of --dev-cert.
// EC P-256, valid from an hour ago for a day; a client trusts one by using its PEM as the CA
// file. Thread-safe (OpenSSL 3 needs no set-up).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace kith::test {

struct TestCertificate {
  std::string cert_pem;
  std::string key_pem;  // PKCS#8, unencrypted

  // `subject_alt_names` in OpenSSL's form: {"IP:127.0.0.1", "DNS:localhost"}. Throws
  // std::runtime_error with OpenSSL's reason if anything fails.
  static TestCertificate generate(const std::vector<std::string>& subject_alt_names,
                                  const std::string& common_name = "kith test server");

  // The usual one for loopback: IP:127.0.0.1, IP:::1 and DNS:localhost.
  static TestCertificate localhost();

  // Writes the PEMs (the key readable by the owner only) and returns `path`.
  std::filesystem::path write_cert(const std::filesystem::path& path) const;
  std::filesystem::path write_key(const std::filesystem::path& path) const;
};

}  // namespace kith::test
