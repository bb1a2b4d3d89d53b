// kithd: the Kith sync server. See server/src/server.hpp and DESIGN.md §4.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "config.hpp"
#include "dev_cert.hpp"
#include "group_commit.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "server.hpp"
#include "sqlite_storage.hpp"
#include "sync_service.hpp"

extern char** environ;

namespace {

// Every connection is a file descriptor: raise the soft limit to the hard one (a systemd unit
// sets the hard limit with LimitNOFILE). Returns the limit in force.
rlim_t raise_open_files_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) return raised.rlim_cur;
  }
  return limit.rlim_cur;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kith::server;
  Config config;
  try {
    auto parsed = parse_config(std::vector<std::string>(argv, argv + argc), environ);
    if (!parsed.config) {
      std::cout << parsed.text;
      return parsed.exit_code;
    }
    config = *parsed.config;
  } catch (const ConfigError& e) {
    std::cerr << "kithd: " << e.what() << "\n";
    return 2;
  }

  // OpenSSL writes to sockets with write(2), which raises SIGPIPE when the peer has gone; the
  // error is handled where the write fails.
  std::signal(SIGPIPE, SIG_IGN);
  const rlim_t open_files = raise_open_files_limit();

  try {
    std::error_code ec;
    std::filesystem::create_directories(config.data, ec);
    if (ec) {
      throw std::runtime_error("cannot create the data directory " + config.data.string() +
                               ": " + ec.message());
    }
    ::chmod(config.data.c_str(), 0700);
    CertFiles tls = config.dev_cert ? ensure_dev_cert(config.data)
                                    : CertFiles{*config.tls_cert, *config.tls_key};

    Metrics metrics;
    SqliteStorage::Options options;
    options.synchronous =
        config.synchronous_full ? SqliteStorage::Options::Sync::kFull : SqliteStorage::Options::Sync::kNormal;
    options.read_connections = std::max(2u, config.threads);
    SqliteStorage storage(config.data / "kithd.db", options);
    GroupCommitter::Options commit_options;
    commit_options.around_dones = Server::deliver_together;
    GroupCommitter committer(
        storage, commit_options,
        [&metrics](std::size_t b, std::size_t o, double s) { metrics.committed(b, o, s); });
    ServiceOptions service_options;
    service_options.catch_up_batch_ops = config.catch_up_batch_ops;
    service_options.max_cached_op_id_bytes = config.plan_cache_mib << 20;
    SyncService service(storage, committer, metrics, service_options);
    Server server(config, tls, service, committer, metrics);

    log::event("listening", {{"host", config.listen_host},
                             {"port", server.port()},
                             {"data", config.data.string()},
                             {"threads", config.threads},
                             {"max_open_files", static_cast<std::uint64_t>(open_files)},
                             {"storage", "sqlite"},
                             {"synchronous", config.synchronous_full ? "full" : "normal"},
                             {"plan_cache_mib", static_cast<std::uint64_t>(config.plan_cache_mib)},
                             {"cert", tls.cert.string()}});
    server.run();
    committer.drain();
    log::event("exit", {{"status", 0}});
    return 0;
  } catch (const std::exception& e) {
    log::event("fatal", {{"error", e.what()}});
    std::cerr << "kithd: " << e.what() << "\n";
    return 1;
  }
}
