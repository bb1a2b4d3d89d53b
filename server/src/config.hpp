// kithd's configuration: flags, KITH_* environment variables and a config file.
//
// A flag overrides the environment, which overrides the file (--config FILE or KITH_CONFIG).
// The file has one `key = value` per line (the flag's name without dashes; `#` starts a
// comment, at the start of a line or after a space; values may be quoted, to hold ` #`). An
// unknown key in the file, a bad value from any source, or a contradiction (--dev-cert with
// --tls-cert) is refused before the server starts, with a message naming the setting and where
// it came from. A KITH_* variable that names no setting is ignored, not refused: scripts and
// other Kith tools use the prefix too (KITH_PRESET, ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace kith::server {

struct Config {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 8443;
  std::filesystem::path data = "kithd-data";
  unsigned threads = 0;  // 0: one per core
  std::optional<std::filesystem::path> tls_cert;
  std::optional<std::filesystem::path> tls_key;
  bool dev_cert = false;
  std::string storage = "sqlite";
  bool synchronous_full = true;  // SQLite synchronous=FULL (else NORMAL)

  // Limits.
  std::size_t max_message_bytes = 1024 * 1024;        // one WebSocket message
  std::size_t max_pending_send_bytes = 16 * 1024 * 1024;  // per connection, then SLOW_READER
  unsigned max_connections_per_account = 16;
  double requests_per_second = 50;  // per connection, sustained
  unsigned request_burst = 200;     // per connection, bucket size
  unsigned tls_handshake_timeout_ms = 10000;
  unsigned idle_timeout_s = 300;  // WebSocket: no data and no pong for this long closes
  std::size_t catch_up_batch_ops = 500;
  // Memory the op-id sets of cached plans may take before the idle plans are dropped
  // (ServiceOptions::max_cached_op_id_bytes).
  std::size_t plan_cache_mib = 256;
  unsigned drain_timeout_ms = 10000;  // SIGTERM: how long to wait for sessions to close
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What parse_config decided: run with `config`, or print `text` and exit with `exit_code`
// (--help, --version).
struct ConfigResult {
  std::optional<Config> config;
  std::string text;
  int exit_code = 0;
};

// `env` is the process environment (environ), passed in for tests. Throws ConfigError.
ConfigResult parse_config(const std::vector<std::string>& args, char** env);

}  // namespace kith::server
