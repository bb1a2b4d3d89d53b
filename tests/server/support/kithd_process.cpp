#include "support/kithd_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;  // NOLINT: POSIX

namespace kith::test {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPoll = std::chrono::milliseconds(20);

// argv/envp for execve, built before fork(): the child may only make async-signal-safe calls.
class CStrings {
 public:
  void add(std::string s) { strings_.push_back(std::move(s)); }
  char* const* get() {
    pointers_.clear();
    for (auto& s : strings_) pointers_.push_back(s.data());
    pointers_.push_back(nullptr);
    return pointers_.data();
  }
  const std::vector<std::string>& strings() const { return strings_; }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> pointers_;
};

bool is_listening_line(const nlohmann::json& line) {
  if (!line.is_object()) return false;
  const auto event = line.find("event");
  const auto port = line.find("port");
  return event != line.end() && event->is_string() && *event == "listening" && port != line.end() &&
         port->is_number_integer() && port->get<std::int64_t>() > 0 &&
         port->get<std::int64_t>() <= 65535;
}

void write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

std::string ExitStatus::to_string() const {
  std::string s = exited ? "exit " + std::to_string(code)
                         : "killed by signal " + std::to_string(signal) + " (" +
                               (signal > 0 ? strsignal(signal) : "?") + ")";
  if (stop_timed_out) s += " after SIGTERM timed out";
  return s;
}

std::optional<std::filesystem::path> KithdProcess::binary() {
#ifdef KITHD_PATH
  return std::filesystem::path(KITHD_PATH);
#else
  return std::nullopt;
#endif
}

KithdProcess::KithdProcess(KithdOptions options) : options_(std::move(options)) {
  if (options_.data_dir) {
    data_dir_ = *options_.data_dir;
  } else {
    data_dir_ = root_ / "data";
    std::filesystem::create_directory(data_dir_);
    std::filesystem::permissions(data_dir_, std::filesystem::perms::owner_all);
  }
  start();
}

KithdProcess::~KithdProcess() {
  if (pid_ > 0) kill9();
}

void KithdProcess::start() {
  if (pid_ > 0)
    throw std::logic_error("kithd is already running (pid " + std::to_string(pid_) + ")");
  const auto bin = binary();
  if (!bin) throw std::logic_error("this test build has no kithd (KITHD_PATH is not defined)");

  CStrings argv;
  argv.add(bin->string());
  if (!options_.listen.empty()) {
    argv.add("--listen");
    argv.add(options_.listen);
  }
  if (options_.data_flag) {
    argv.add("--data");
    argv.add(data_dir_.string());
  }
  if (options_.dev_cert) argv.add("--dev-cert");
  for (const auto& a : options_.args) argv.add(a);

  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "KITH_", 5) != 0) environment.emplace_back(*e);
  }
  for (const auto& [name, value] : options_.env) {
    std::erase_if(environment, [&](const std::string& s) { return s.starts_with(name + "="); });
    environment.push_back(name + "=" + value);
  }
  CStrings envp;
  for (auto& e : environment) envp.add(std::move(e));

  log_path_ = root_ / ("kithd-" + std::to_string(++runs_) + ".log");
  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (log_fd < 0)
    throw std::runtime_error("cannot create " + log_path_.string() + ": " + std::strerror(errno));
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  {
    // The command line heads the log, so a failure message shows what was run.
    std::string line = "# kithd run " + std::to_string(runs_) + ":";
    for (const auto& a : argv.strings()) line += " " + a;
    write_all(log_fd, line + "\n");
  }

  char* const* args = argv.get();
  char* const* env = envp.get();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::signal(SIGPIPE, SIG_DFL);  // the test process may ignore it; kithd starts as from a shell
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::close_range(3, ~0U, 0);  // no test sockets leak into kithd
    ::execve(args[0], args, env);
    static constexpr char kMsg[] = "# execve of kithd failed\n";
    [[maybe_unused]] auto n = ::write(2, kMsg, sizeof kMsg - 1);
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(fork_errno));
  pid_ = pid;
  port_ = 0;

  const auto deadline = Clock::now() + options_.start_timeout;
  for (;;) {
    for (const auto& line : log_lines()) {
      if (is_listening_line(line)) {
        port_ = static_cast<std::uint16_t>(line["port"].get<std::int64_t>());
        return;
      }
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      const ExitStatus st = reap(status);
      throw std::runtime_error("kithd ended (" + st.to_string() +
                               ") before it reported listening; log " + log_path_.string() + ":\n" +
                               log_tail());
    }
    if (Clock::now() >= deadline) {
      kill9();
      throw std::runtime_error("kithd did not report {\"event\":\"listening\",\"port\":N} within " +
                               std::to_string(options_.start_timeout.count()) + " ms; log " +
                               log_path_.string() + ":\n" + log_tail());
    }
    std::this_thread::sleep_for(kPoll);
  }
}

ExitStatus KithdProcess::reap(int wait_status) {
  pid_ = -1;
  ExitStatus st;
  if (WIFEXITED(wait_status)) {
    st.exited = true;
    st.code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    st.signal = WTERMSIG(wait_status);
  }
  return st;
}

ExitStatus KithdProcess::stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) throw std::logic_error("kithd is not running");
  ::kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) return reap(status);
    if (r < 0 && errno != EINTR) {
      pid_ = -1;
      throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
    }
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ExitStatus st = kill9();
  st.stop_timed_out = true;
  return st;
}

ExitStatus KithdProcess::kill9() {
  if (pid_ <= 0) throw std::logic_error("kithd is not running");
  ::kill(pid_, SIGKILL);
  int status = 0;
  pid_t r = 0;
  do {
    r = ::waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) {
    pid_ = -1;
    return ExitStatus{};
  }
  return reap(status);
}

void KithdProcess::send_signal(int signal) const {
  if (pid_ <= 0) throw std::logic_error("kithd is not running");
  ::kill(pid_, signal);
}

bool KithdProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    reap(status);
    return false;
  }
  return true;
}

client::Endpoint KithdProcess::endpoint() const {
  client::Endpoint ep;
  ep.host = "127.0.0.1";
  ep.port = port_;
  return ep;
}

client::TlsOptions KithdProcess::tls_options(std::chrono::milliseconds timeout) const {
  client::TlsOptions o;
  o.ca_file = ca_file();
  o.timeout = timeout;
  return o;
}

std::unique_ptr<client::Connection> KithdProcess::connect() const {
  return client::Connection::open(endpoint(), tls_options());
}

std::string KithdProcess::log_text() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<nlohmann::json> KithdProcess::log_lines() const {
  std::vector<nlohmann::json> lines;
  std::istringstream in(log_text());
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    if (first && line.starts_with("# kithd run ")) {  // our own header line
      first = false;
      continue;
    }
    first = false;
    if (line.empty()) continue;
    auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    lines.push_back(parsed.is_discarded() ? nlohmann::json(line) : std::move(parsed));
  }
  return lines;
}

std::string KithdProcess::log_tail(std::size_t lines) const {
  const std::string text = log_text();
  std::size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (std::size_t n = 0; n < lines && pos > 0; ++n) {
    const auto nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) {
      pos = 0;
      break;
    }
    pos = nl;
  }
  return text.substr(pos == 0 ? 0 : pos + 1);
}

std::optional<nlohmann::json> KithdProcess::wait_for_log(
    const std::function<bool(const nlohmann::json&)>& match, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    for (auto& line : log_lines()) {
      if (match(line)) return std::move(line);
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPoll);
  }
}

std::optional<nlohmann::json> KithdProcess::wait_for_event(std::string_view event,
                                                           std::chrono::milliseconds timeout) {
  return wait_for_log(
      [&](const nlohmann::json& line) {
        if (!line.is_object()) return false;
        const auto e = line.find("event");
        return e != line.end() && e->is_string() && e->get<std::string>() == event;
      },
      timeout);
}

}  // namespace kith::test
