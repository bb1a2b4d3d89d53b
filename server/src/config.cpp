#include "config.hpp"

#include <CLI/CLI.hpp>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

namespace kith::server {
namespace {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// The value after `=`: a quoted one ends at its closing quote; in an unquoted one, `#` after
// a space or tab starts a comment, as it does at the start of a line (`threads = 4  # cores`).
// nullopt for an opening quote without its closing one, or text after it.
std::optional<std::string> parse_value(const std::string& text) {
  std::string v = trim(text);
  if (!v.empty() && (v.front() == '"' || v.front() == '\'')) {
    auto close = v.find(v.front(), 1);
    if (close == std::string::npos) return std::nullopt;
    std::string rest = trim(v.substr(close + 1));
    if (!rest.empty() && rest.front() != '#') return std::nullopt;
    return v.substr(1, close - 1);
  }
  for (std::size_t i = 1; i < v.size(); ++i) {
    if (v[i] == '#' && (v[i - 1] == ' ' || v[i - 1] == '\t')) return trim(v.substr(0, i));
  }
  return v;
}

// key = value lines.
std::vector<std::pair<std::string, std::string>> read_file(const std::filesystem::path& path) {
  std::error_code ec;
  std::ifstream in(path);
  // A directory opens for reading on Linux and reads as nothing: say so rather than ignore it.
  if (!in || std::filesystem::is_directory(path, ec)) {
    throw ConfigError("cannot read the config file " + path.string() +
                      "; check the path given to --config (or KITH_CONFIG)");
  }
  std::vector<std::pair<std::string, std::string>> items;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    auto eq = t.find('=');
    if (eq == std::string::npos) {
      throw ConfigError("config file " + path.string() + " line " + std::to_string(n) +
                        ": expected `key = value`, got `" + t + "`");
    }
    std::string key = trim(t.substr(0, eq));
    auto value = parse_value(t.substr(eq + 1));
    if (!value) {
      throw ConfigError("config file " + path.string() + " line " + std::to_string(n) +
                        ": a quoted value must end with its closing quote, with at most a "
                        "comment after it; got `" +
                        t + "`");
    }
    items.emplace_back(key, *value);
  }
  return items;
}

std::string env_name(const std::string& key) {
  std::string out = "KITH_";
  for (char c : key) out += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return out;
}

}  // namespace

ConfigResult parse_config(const std::vector<std::string>& args, char** env) {
  Config c;
  CLI::App app{"kithd: the Kith sync server (TLS WebSocket; stores and relays plans it cannot read)",
               "kithd"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string config_file;
  std::string listen = "127.0.0.1:8443";
  std::string tls_cert, tls_key, synchronous = "full", data = c.data.string();

  app.add_option("--config", config_file, "Config file: `key = value` lines (KITH_CONFIG)");
  app.add_option("--listen", listen, "Address and port to listen on, HOST:PORT (port 0: any)");
  app.add_option("--data", data, "Data directory (created if missing)");
  app.add_option("--threads", c.threads, "Worker threads (0: one per core)")
      ->check(CLI::Range(0u, 256u));
  app.add_option("--tls-cert", tls_cert, "TLS certificate chain, PEM");
  app.add_option("--tls-key", tls_key, "TLS private key, PEM");
  app.add_flag("--dev-cert", c.dev_cert,
               "Make (once) a self-signed certificate for localhost, written to DATA/dev-cert.pem");
  app.add_option("--storage", c.storage, "Storage backend: sqlite (embedded, the default)");
  app.add_option("--synchronous", synchronous, "SQLite durability: full (default) or normal")
      ->check(CLI::IsMember({"full", "normal"}));
  app.add_option("--max-message-bytes", c.max_message_bytes, "Largest WebSocket message accepted")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{16} * 1024 * 1024));
  app.add_option("--max-pending-send-bytes", c.max_pending_send_bytes,
                 "Bytes queued for one connection before it is dropped as a slow reader")
      ->check(CLI::Range(std::size_t{64} * 1024, std::size_t{1} << 30));
  app.add_option("--max-connections-per-account", c.max_connections_per_account,
                 "Connections one account may hold at once")
      ->check(CLI::Range(1u, 10000u));
  app.add_option("--requests-per-second", c.requests_per_second,
                 "Requests per second one connection may sustain")
      ->check(CLI::Range(0.1, 100000.0));
  app.add_option("--request-burst", c.request_burst, "Requests one connection may send at once")
      ->check(CLI::Range(1u, 1000000u));
  app.add_option("--tls-handshake-timeout-ms", c.tls_handshake_timeout_ms,
                 "Time allowed for the TLS handshake and the first HTTP request")
      ->check(CLI::Range(100u, 600000u));
  app.add_option("--idle-timeout-s", c.idle_timeout_s,
                 "A WebSocket with no traffic and no pong for this long is closed")
      ->check(CLI::Range(1u, 86400u));
  app.add_option("--catch-up-batch-ops", c.catch_up_batch_ops, "Ops per catch-up batch")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000}));
  app.add_option("--plan-cache-mib", c.plan_cache_mib,
                 "MiB the op ids of plans held in memory may take before idle plans are dropped")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  app.add_option("--drain-timeout-ms", c.drain_timeout_ms,
                 "On SIGTERM, how long to wait for sessions to close")
      ->check(CLI::Range(0u, 600000u));
  app.set_version_flag("--version", "kithd 0.1.0");

  // Pass 1: the command line alone, to find --config and --help.
  std::vector<std::string> cmdline(args.begin() + (args.empty() ? 0 : 1), args.end());
  {
    std::vector<std::string> rev(cmdline.rbegin(), cmdline.rend());
    // Extras are collected and reported here: CLI11 would list them as it holds them, reversed
    // ("not expected: 2 --bogus" for `--bogus 2`).
    app.allow_extras();
    try {
      app.parse(rev);
    } catch (const CLI::Success& e) {
      std::ostringstream out, err;
      app.exit(e, out, err);
      return {std::nullopt, out.str() + err.str(), 0};
    } catch (const CLI::Error& e) {
      throw ConfigError(std::string(e.what()) + " (run kithd --help for the options)");
    }
    if (!app.remaining().empty()) {
      std::string extras;
      for (const auto& a : app.remaining()) extras += (extras.empty() ? "" : " ") + a;
      throw ConfigError("unknown option or stray argument on the command line: `" + extras +
                        "` (run kithd --help for the options)");
    }
    app.allow_extras(false);
  }

  std::map<std::string, std::string> env_vars;
  for (char** e = env; e && *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env_vars[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (config_file.empty() && env_vars.count("KITH_CONFIG")) config_file = env_vars["KITH_CONFIG"];

  // Pass 2: file, then environment, then flags; the last value of an option wins. Each value
  // from the file or the environment is first parsed alone, so that a bad one is reported
  // with where it came from (the command line was checked in pass 1).
  std::vector<std::string> merged;
  auto known = [&](const std::string& key) {
    return key != "config" && key != "help" && key != "version" &&
           app.get_option_no_throw("--" + key) != nullptr;
  };
  auto check_alone = [&](const std::string& arg, const std::string& where) {
    app.clear();
    std::vector<std::string> one{arg};
    try {
      app.parse(one);
    } catch (const CLI::Error& e) {
      throw ConfigError(where + ": " + e.what() + " (run kithd --help for the options)");
    }
  };
  if (!config_file.empty()) {
    for (const auto& [key, value] : read_file(config_file)) {
      if (!known(key)) {
        throw ConfigError("config file " + config_file + ": unknown key `" + key +
                          "` (keys are the long option names, e.g. listen, data, threads)");
      }
      merged.push_back("--" + key + "=" + value);
      check_alone(merged.back(), "config file " + config_file + ", `" + key + " = " + value + "`");
    }
  }
  for (const CLI::Option* opt : app.get_options()) {
    std::string key = opt->get_single_name();
    if (!known(key)) continue;
    auto it = env_vars.find(env_name(key));
    if (it != env_vars.end()) {
      merged.push_back("--" + key + "=" + it->second);
      check_alone(merged.back(), "environment variable " + it->first + "=" + it->second);
    }
  }
  merged.insert(merged.end(), cmdline.begin(), cmdline.end());
  app.clear();
  {
    std::vector<std::string> rev(merged.rbegin(), merged.rend());
    try {
      app.parse(rev);
    } catch (const CLI::Error& e) {
      throw ConfigError(std::string(e.what()) +
                        " (from the command line, a KITH_* variable or the config file; "
                        "run kithd --help for the options)");
    }
  }

  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw ConfigError("--listen must be HOST:PORT, e.g. 127.0.0.1:8443; got `" + listen + "`");
  }
  c.listen_host = listen.substr(0, colon);
  if (c.listen_host.size() > 2 && c.listen_host.front() == '[' && c.listen_host.back() == ']') {
    c.listen_host = c.listen_host.substr(1, c.listen_host.size() - 2);
  }
  try {
    std::size_t used = 0;
    unsigned long port = std::stoul(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1 || port > 65535) throw std::out_of_range("port");
    c.listen_port = static_cast<std::uint16_t>(port);
  } catch (const std::exception&) {
    throw ConfigError("--listen: the port must be a number from 0 to 65535; got `" +
                      listen.substr(colon + 1) + "`");
  }
  c.data = data;
  if (!tls_cert.empty()) c.tls_cert = tls_cert;
  if (!tls_key.empty()) c.tls_key = tls_key;
  c.synchronous_full = synchronous == "full";
  if (c.dev_cert && (c.tls_cert || c.tls_key)) {
    throw ConfigError("--dev-cert makes its own certificate; do not also give --tls-cert/--tls-key");
  }
  if (!c.dev_cert && (!c.tls_cert || !c.tls_key)) {
    throw ConfigError(
        "kithd needs a TLS certificate: give --tls-cert FILE and --tls-key FILE, or --dev-cert "
        "for a self-signed one on a development machine");
  }
  if (c.storage != "sqlite") {
    throw ConfigError("--storage " + c.storage +
                      ": this build supports only `sqlite` (the embedded default); PostgreSQL "
                      "is planned but not built in");
  }
  if (c.threads == 0) c.threads = std::max(1u, std::thread::hardware_concurrency());
  return {c, {}, 0};
}

}  // namespace kith::server
