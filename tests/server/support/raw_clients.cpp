#include "support/raw_clients.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace kith::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += (out.empty() ? "" : "; ") + std::string(buf);
  }
  return out.empty() ? "no OpenSSL error" : out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The response in `data`, or nullopt while it is incomplete. Throws when it cannot be one.
std::optional<HttpResponse> parse_response(const std::string& data, bool eof, bool head) {
  const auto header_end = data.find("\r\n\r\n");
  if (header_end == std::string::npos) {
    if (eof)
      throw std::runtime_error("the connection ended inside the response head: \"" + data + "\"");
    return std::nullopt;
  }
  HttpResponse res;
  std::string_view head_text(data.data(), header_end);
  auto line_end = head_text.find("\r\n");
  const std::string_view status_line = head_text.substr(0, line_end);
  if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/" || status_line[8] != ' ') {
    throw std::runtime_error("not an HTTP status line: \"" + std::string(status_line) + "\"");
  }
  res.status = std::stoi(std::string(status_line.substr(9, 3)));
  res.reason = status_line.size() > 13 ? std::string(status_line.substr(13)) : "";
  while (line_end != std::string_view::npos) {
    head_text.remove_prefix(line_end + 2);
    line_end = head_text.find("\r\n");
    const std::string_view line = head_text.substr(0, line_end);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos)
      throw std::runtime_error("bad header line: \"" + std::string(line) + "\"");
    std::string& value = res.headers[lower(line.substr(0, colon))];
    value += (value.empty() ? "" : ", ") + std::string(trim(line.substr(colon + 1)));
  }

  const std::string_view body(data.data() + header_end + 4, data.size() - header_end - 4);
  if (head || res.status / 100 == 1 || res.status == 204 || res.status == 304) return res;
  if (lower(res.header("transfer-encoding")).find("chunked") != std::string::npos) {
    std::size_t pos = 0;
    for (;;) {
      const auto eol = body.find("\r\n", pos);
      if (eol == std::string_view::npos) break;
      std::string_view size_field = body.substr(pos, eol - pos);
      size_field = trim(size_field.substr(0, size_field.find(';')));  // no chunk extensions
      const std::string size_text(size_field);
      std::size_t size = 0;
      try {
        size = std::stoul(size_text, nullptr, 16);
      } catch (const std::exception&) {
        throw std::runtime_error("bad chunk size \"" + size_text + "\"");
      }
      if (size == 0) {
        // Trailers (ignored) end with an empty line: "0\r\n" then "\r\n" at the least.
        if (body.find("\r\n\r\n", eol) != std::string_view::npos) return res;
        break;
      }
      if (body.size() < eol + 2 + size + 2) break;
      res.body.append(body.substr(eol + 2, size));
      pos = eol + 2 + size + 2;
    }
    if (eof) throw std::runtime_error("the connection ended inside a chunked body");
    return std::nullopt;
  }
  if (const std::string length = res.header("content-length"); !length.empty()) {
    const std::size_t n = std::stoul(length);
    if (body.size() >= n) {
      res.body = std::string(body.substr(0, n));
      return res;
    }
    if (eof)
      throw std::runtime_error("the body ended after " + std::to_string(body.size()) + " of " +
                               length + " bytes");
    return std::nullopt;
  }
  if (!eof) return std::nullopt;
  res.body = std::string(body);
  return res;
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  const auto it = headers.find(lower(name));
  return it == headers.end() ? "" : it->second;
}

// --- RawConnection -------------------------------------------------------------------------

struct RawConnection::Impl {
  int fd = -1;
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;

  ~Impl() {
    if (ssl != nullptr) SSL_free(ssl);
    if (ctx != nullptr) SSL_CTX_free(ctx);
    if (fd >= 0) ::close(fd);
  }

  // Waits until `events` (or an error or hang-up) on the socket; false once the deadline passes.
  bool wait(short events, Clock::time_point deadline) const {
    for (;;) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(left));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR)
        throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
    }
  }

  // > 0 bytes read; 0 when the peer has closed (or reset, or sent an alert); -1 on timeout.
  long read_some(char* buf, std::size_t n, Clock::time_point deadline) {
    for (;;) {
      if (ssl != nullptr) {
        ERR_clear_error();
        const int r = SSL_read(ssl, buf, static_cast<int>(std::min<std::size_t>(n, 1 << 20)));
        if (r > 0) return r;
        const int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
          if (!wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) return -1;
          continue;
        }
        ERR_clear_error();
        return 0;
      }
      const ssize_t r = ::recv(fd, buf, n, 0);
      if (r >= 0) return r;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!wait(POLLIN, deadline)) return -1;
        continue;
      }
      return 0;
    }
  }

  bool write_all(std::string_view data, Clock::time_point deadline) {
    while (!data.empty()) {
      if (ssl != nullptr) {
        ERR_clear_error();
        const int r = SSL_write(ssl, data.data(),
                                static_cast<int>(std::min<std::size_t>(data.size(), 1 << 20)));
        if (r > 0) {
          data.remove_prefix(static_cast<std::size_t>(r));
          continue;
        }
        const int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
          if (!wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) return false;
          continue;
        }
        ERR_clear_error();
        return false;
      }
      const ssize_t r = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (r > 0) {
        data.remove_prefix(static_cast<std::size_t>(r));
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!wait(POLLOUT, deadline)) return false;
        continue;
      }
      return false;
    }
    return true;
  }
};

RawConnection::RawConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RawConnection::~RawConnection() = default;

std::unique_ptr<RawConnection> RawConnection::connect(std::uint16_t port,
                                                      std::chrono::milliseconds timeout) {
  static std::once_flag sigpipe;
  std::call_once(sigpipe, [] { ::signal(SIGPIPE, SIG_IGN); });

  auto impl = std::make_unique<Impl>();
  impl->fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (impl->fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const std::string where = "127.0.0.1:" + std::to_string(port);
  if (::connect(impl->fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS)
      throw std::runtime_error("connect " + where + ": " + std::strerror(errno));
    if (!impl->wait(POLLOUT, Clock::now() + timeout))
      throw std::runtime_error("connect " + where + ": timed out");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(impl->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) throw std::runtime_error("connect " + where + ": " + std::strerror(err));
  }
  int one = 1;
  ::setsockopt(impl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return std::unique_ptr<RawConnection>(new RawConnection(std::move(impl)));
}

void RawConnection::tls_handshake(const std::optional<std::filesystem::path>& ca_file,
                                  std::chrono::milliseconds timeout) {
  if (impl_->ssl != nullptr) throw std::logic_error("TLS is already set up");
  ERR_clear_error();
  impl_->ctx = SSL_CTX_new(TLS_client_method());
  if (impl_->ctx == nullptr || SSL_CTX_set_min_proto_version(impl_->ctx, TLS1_2_VERSION) != 1) {
    throw std::runtime_error("TLS context: " + openssl_errors());
  }
  if (ca_file) {
    if (SSL_CTX_load_verify_locations(impl_->ctx, ca_file->c_str(), nullptr) != 1) {
      throw std::runtime_error("CA file " + ca_file->string() + ": " + openssl_errors());
    }
    SSL_CTX_set_verify(impl_->ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(impl_->ctx, SSL_VERIFY_NONE, nullptr);
  }
  impl_->ssl = SSL_new(impl_->ctx);
  if (impl_->ssl == nullptr || SSL_set_fd(impl_->ssl, impl_->fd) != 1) {
    throw std::runtime_error("TLS session: " + openssl_errors());
  }
  if (ca_file && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(impl_->ssl), "127.0.0.1") != 1) {
    throw std::runtime_error("TLS session: " + openssl_errors());
  }
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    ERR_clear_error();
    const int r = SSL_connect(impl_->ssl);
    if (r == 1) return;
    const int e = SSL_get_error(impl_->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (!impl_->wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
        throw std::runtime_error("TLS handshake: timed out");
      }
      continue;
    }
    const long verify = SSL_get_verify_result(impl_->ssl);
    throw std::runtime_error("TLS handshake failed: " + openssl_errors() +
                             (verify != X509_V_OK ? std::string(" (certificate: ") +
                                                        X509_verify_cert_error_string(verify) + ")"
                                                  : std::string()));
  }
}

bool RawConnection::is_tls() const noexcept { return impl_->ssl != nullptr; }

bool RawConnection::send(std::string_view bytes, std::chrono::milliseconds timeout) {
  return impl_->write_all(bytes, Clock::now() + timeout);
}

RawReply RawConnection::receive_until_close(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  RawReply reply;
  char buf[16384];
  for (;;) {
    const long n = impl_->read_some(buf, sizeof buf, deadline);
    if (n < 0) return reply;
    if (n == 0) {
      reply.peer_closed = true;
      return reply;
    }
    reply.received.append(buf, static_cast<std::size_t>(n));
  }
}

std::string RawConnection::receive_some(std::chrono::milliseconds timeout) {
  char buf[16384];
  const long n = impl_->read_some(buf, sizeof buf, Clock::now() + timeout);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

bool RawConnection::wait_closed(std::chrono::milliseconds timeout) {
  return receive_until_close(timeout).peer_closed;
}

// --- One-shot helpers ----------------------------------------------------------------------

RawReply tcp_exchange(std::uint16_t port, std::string_view bytes,
                      std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto conn = RawConnection::connect(port, timeout);
  if (!conn->send(bytes, timeout)) {
    // The server closed before taking everything: that is an answer too.
    return conn->receive_until_close(std::chrono::milliseconds(100));
  }
  return conn->receive_until_close(
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
}

HttpResponse https_request(std::uint16_t port, const std::filesystem::path& ca_file,
                           std::string_view method, std::string_view target,
                           std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const auto left = [&] {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  };
  auto conn = RawConnection::connect(port, timeout);
  conn->tls_handshake(ca_file, left());
  const std::string request = std::string(method) + " " + std::string(target) +
                              " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                              "\r\nUser-Agent: kith-test\r\nAccept: */*\r\n"
                              "Connection: close\r\n\r\n";
  if (!conn->send(request, left()))
    throw std::runtime_error("https: the server closed before the request was sent");
  const bool head = method == "HEAD";
  std::string data;
  for (;;) {
    if (auto res = parse_response(data, false, head)) return *res;
    if (left().count() == 0)
      throw std::runtime_error("https: no complete response within " +
                               std::to_string(timeout.count()) + " ms; got \"" + data + "\"");
    const std::string more = conn->receive_some(left());
    if (more.empty()) {
      // Timed out or closed: closed only if a read right now also gives nothing.
      auto rest = conn->receive_until_close(std::chrono::milliseconds(0));
      data += rest.received;
      if (rest.peer_closed) {
        if (auto res = parse_response(data, true, head)) return *res;
      }
      continue;
    }
    data += more;
  }
}

}  // namespace kith::test
