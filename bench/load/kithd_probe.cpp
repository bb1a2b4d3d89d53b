#include "kithd_probe.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "kith/client/transport.hpp"
#include "support/temp_dir.hpp"

extern char** environ;  // NOLINT: POSIX

namespace kith::bench {

namespace {

bool listening_port(const std::filesystem::path& log, std::uint16_t& port) {
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || j.value("event", "") != "listening") continue;
    const auto p = j.value("port", 0);
    if (p > 0 && p <= 65535) {
      port = static_cast<std::uint16_t>(p);
      return true;
    }
  }
  return false;
}

std::string tail(const std::filesystem::path& log, std::size_t max_bytes = 4000) {
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace

std::filesystem::path Kithd::default_binary() {
#ifdef KITHD_PATH
  return KITHD_PATH;
#else
  return {};
#endif
}

Kithd::Kithd(const KithdTarget& target) {
  if (target.url) {
    const auto ep = client::Endpoint::parse(*target.url);
    address_.host = ep.host;
    address_.port = ep.port;
    address_.ca_file = target.ca_file;
    pid_ = target.pid;
    command_ = "(attached to " + *target.url + ")";
    return;
  }
  start(target);
}

void Kithd::start(const KithdTarget& target) {
  const std::filesystem::path binary =
      target.binary.empty() ? default_binary() : target.binary;
  if (binary.empty()) throw std::runtime_error("no kithd binary: give --kithd PATH");
  root_ = std::make_unique<test::TempDir>("kithd-load");
  const std::filesystem::path data = *root_ / "data";
  std::filesystem::create_directory(data);
  std::filesystem::permissions(data, std::filesystem::perms::owner_all);
  log_ = *root_ / "kithd.log";

  // argv and envp are built before fork(): the child makes async-signal-safe calls only.
  std::vector<std::string> args = {binary.string(), "--listen", "127.0.0.1:0", "--data",
                                   data.string(), "--dev-cert"};
  args.insert(args.end(), target.args.begin(), target.args.end());
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "KITH_", 5) != 0) env.emplace_back(*e);
  }
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  command_.clear();
  for (const auto& a : args) command_ += (command_.empty() ? "" : " ") + a;

  const int log_fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) throw std::runtime_error("cannot create " + log_.string());
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the load generator
    if (::getppid() != parent) ::_exit(127);
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::close_range(3, ~0U, 0);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(null_fd);
  if (pid < 0) throw std::runtime_error("fork failed");
  pid_ = pid;
  reaped_ = false;

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::uint16_t port = 0;
  while (!listening_port(log_, port)) {
    if (!running()) {
      throw std::runtime_error("kithd ended before it listened; its log:\n" + tail(log_));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      stop();
      throw std::runtime_error("kithd did not listen within 20 s; its log:\n" + tail(log_));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  address_.host = "127.0.0.1";
  address_.port = port;
  address_.ca_file = data / "dev-cert.pem";
}

Kithd::~Kithd() {
  if (started_here()) stop();
}

std::string Kithd::log_tail(std::size_t max_bytes) const {
  return started_here() ? tail(log_, max_bytes) : std::string();
}

bool Kithd::running() {
  if (!started_here()) return true;
  if (reaped_) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    reaped_ = true;
    return false;
  }
  return true;
}

std::string Kithd::stop() {
  if (!started_here() || reaped_) return "not running";
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int status = 0;
  std::string how;
  for (;;) {
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) {
      reaped_ = true;
      return "lost (waitpid failed)";
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      how = " (SIGKILL after SIGTERM timed out)";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  reaped_ = true;
  return describe_status(status) + how;
}

ProcStatus proc_status(pid_t pid) {
  ProcStatus out;
  if (pid <= 0) return out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  auto value = [](const std::string& l) {
    std::istringstream s(l.substr(l.find(':') + 1));
    std::uint64_t v = 0;
    s >> v;
    return v;
  };
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) out.rss_kb = value(line);
    if (line.starts_with("VmHWM:")) out.hwm_kb = value(line);
    if (line.starts_with("Threads:")) out.threads = value(line);
  }
  return out;
}

namespace {

double stat_cpu_seconds(const std::string& path) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold spaces.
  const auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  // state is field 3; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && (fields >> field); ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace

double proc_cpu_seconds(pid_t pid) {
  return pid > 0 ? stat_cpu_seconds("/proc/" + std::to_string(pid) + "/stat") : 0;
}

std::map<pid_t, double> thread_cpu_seconds(pid_t pid) {
  std::map<pid_t, double> out;
  if (pid <= 0) return out;
  std::error_code ec;
  const std::filesystem::path dir = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    try {
      const pid_t tid = static_cast<pid_t>(std::stol(entry.path().filename().string()));
      out[tid] = stat_cpu_seconds((entry.path() / "stat").string());
    } catch (const std::exception&) {
    }
  }
  return out;
}

namespace {

std::uint64_t proc_io_field(pid_t pid, const std::string& field) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/io");
  std::string key;
  std::uint64_t value = 0;
  while (in >> key >> value) {
    if (key == field) return value;
  }
  return 0;
}

}  // namespace

std::uint64_t proc_storage_write_bytes(pid_t pid) { return proc_io_field(pid, "write_bytes:"); }

std::uint64_t proc_write_syscalls(pid_t pid) { return proc_io_field(pid, "syscw:"); }

double self_cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

MachineCpu machine_cpu_seconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  if (cpu != "cpu") return {};
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return {(user + nice + system) / tick, (irq + softirq) / tick, steal / tick};
}

double load_average() {
  std::ifstream in("/proc/loadavg");
  double one = 0;
  in >> one;
  return one;
}

Metrics parse_metrics(const std::string& text) {
  Metrics out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    try {
      out[line.substr(0, space)] = std::stod(line.substr(space + 1));
    } catch (const std::exception&) {
      // A value that is not a number: not a series we read.
    }
  }
  return out;
}

Metrics scrape_metrics(const ServerAddress& server) {
  try {
    return parse_metrics(https_get(server, "/metrics"));
  } catch (const std::exception& e) {
    std::cerr << "kithd_load: warning: cannot scrape /metrics: " << e.what() << "\n";
    return {};
  }
}

Metrics metrics_delta(const Metrics& a, const Metrics& b) {
  Metrics out;
  for (const auto& [name, value] : b) {
    auto it = a.find(name);
    out[name] = value - (it == a.end() ? 0 : it->second);
  }
  return out;
}

}  // namespace kith::bench
