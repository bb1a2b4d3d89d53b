#include "support/kith_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/prctl.h>
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

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::filesystem::path kith_binary() { return KITH_CLI_PATH; }

nlohmann::json KithRun::json() const {
  std::istringstream in(out);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return nlohmann::json::parse(last, nullptr, /*allow_exceptions=*/false);
}

std::string KithRun::describe() const {
  std::string status = exited ? "exit " + std::to_string(code) : "signal " + std::to_string(signal);
  if (timed_out) status += " (timed out)";
  return status + "\n--- stdout:\n" + out + "--- stderr:\n" + err;
}

KithChild::KithChild(const std::vector<std::string>& args, const Env& env, bool terminal) {
  std::vector<std::string> argv_strings{kith_binary().string()};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "KITH_", 5) != 0) env_strings.emplace_back(*e);
  }
  for (const auto& [name, value] : env) env_strings.push_back(name + "=" + value);
  std::vector<char*> argv, envp;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  const std::string out_path = (dir_ / "stdout").string();
  const std::string err_path = (dir_ / "stderr").string();

  const pid_t parent = ::getpid();
  // forkpty: a new session whose controlling terminal is the pseudo-terminal; fork + setsid: a
  // new session with no terminal at all, so kith must not prompt.
  pid_ = terminal ? ::forkpty(&terminal_, nullptr, nullptr, nullptr) : ::fork();
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    if (!terminal) ::setsid();
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0) ::_exit(126);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::close_range(3, ~0U, 0);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
}

KithChild::~KithChild() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  if (terminal_ >= 0) ::close(terminal_);
}

void KithChild::read_terminal(std::chrono::milliseconds wait) {
  if (terminal_ < 0) return;
  pollfd p{terminal_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return;
  char buf[4096];
  const ssize_t n = ::read(terminal_, buf, sizeof buf);  // EIO once kith has exited
  if (n > 0) screen_.append(buf, static_cast<std::size_t>(n));
}

std::string KithChild::screen() {
  read_terminal(std::chrono::milliseconds(0));
  return screen_;
}

bool KithChild::wait_for_prompt(const std::string& text, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (screen_.find(text, answered_) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    read_terminal(std::chrono::milliseconds(50));
  }
  return true;
}

void KithChild::type(const std::string& line) {
  answered_ = screen_.size();
  const std::string keys = line + "\r";
  if (::write(terminal_, keys.data(), keys.size()) != static_cast<ssize_t>(keys.size())) {
    throw std::runtime_error(std::string("writing to the terminal: ") + std::strerror(errno));
  }
}

void KithChild::send_signal(int signal) const {
  if (pid_ > 0) ::kill(pid_, signal);
}

std::string KithChild::out() const { return slurp(dir_ / "stdout"); }
std::string KithChild::err() const { return slurp(dir_ / "stderr"); }

KithRun KithChild::wait(std::chrono::milliseconds timeout) {
  KithRun r;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int st = 0;
  for (;;) {
    const pid_t w = ::waitpid(pid_, &st, WNOHANG);
    if (w == pid_) break;
    if (w < 0 && errno != EINTR) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      r.timed_out = true;
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &st, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  if (WIFEXITED(st)) {
    r.exited = true;
    r.code = WEXITSTATUS(st);
  } else if (WIFSIGNALED(st)) {
    r.signal = WTERMSIG(st);
  }
  r.out = out();
  r.err = err();
  return r;
}

KithRun run_kith(const std::vector<std::string>& args, const Env& env,
                 std::chrono::milliseconds timeout) {
  KithChild child(args, env);
  return child.wait(timeout);
}

}  // namespace kith::test
