// --dev-cert: a self-signed certificate for a development machine, made once and reused so that
// clients that trusted it (kith --ca DATA/dev-cert.pem) keep working across restarts.
#pragma once

#include <filesystem>

namespace kith::server {

struct CertFiles {
  std::filesystem::path cert;
  std::filesystem::path key;
};

// DATA/dev-cert.pem and DATA/dev-key.pem (mode 0600): an ECDSA P-256 certificate valid for a
// year for localhost, 127.0.0.1 and ::1, made when missing or expired. Throws
// std::runtime_error with a sentence naming the file when it cannot be written.
CertFiles ensure_dev_cert(const std::filesystem::path& data_dir);

}  // namespace kith::server
