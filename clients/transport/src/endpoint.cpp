// The parts of the transport that need no Beast: endpoints and errors.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdexcept>

#include "kith/client/transport.hpp"

namespace kith::client {

using Kind = TransportError::Kind;

// --- TransportError ------------------------------------------------------------------------

TransportError::TransportError(Kind kind, const std::string& message,
                               kith::v1::ErrorCode server_code)
    : std::runtime_error(message), kind_(kind), server_code_(server_code) {}

std::string_view to_string(TransportError::Kind kind) noexcept {
  switch (kind) {
    case Kind::kUnreachable:
      return "unreachable";
    case Kind::kTlsUntrusted:
      return "tls-untrusted";
    case Kind::kTlsFailed:
      return "tls-failed";
    case Kind::kHandshake:
      return "handshake";
    case Kind::kTimeout:
      return "timeout";
    case Kind::kClosed:
      return "closed";
    case Kind::kProtocol:
      return "protocol";
    case Kind::kServerError:
      return "server-error";
  }
  return "unknown";
}

// --- Endpoint ------------------------------------------------------------------------------

Endpoint Endpoint::parse(std::string_view url) {
  const std::string shown(url);
  auto bad = [&](const std::string& why) {
    return std::invalid_argument("\"" + shown + "\" is not a server address: " + why +
                                 " (expected wss://HOST:PORT, e.g. wss://127.0.0.1:8443)");
  };
  constexpr std::string_view kScheme = "wss://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    if (url.substr(0, 5) == "ws://") throw bad("kithd speaks only TLS, so the scheme is wss://");
    throw bad("it does not start with wss://");
  }
  std::string_view rest = url.substr(kScheme.size());
  Endpoint ep;
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) ep.path = std::string(rest.substr(slash));
  for (char c : ep.path) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '#') {
      throw bad("the path has a space, control character or '#'");
    }
  }
  if (authority.find('@') != std::string_view::npos) throw bad("user names are not supported");

  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) throw bad("the IPv6 address has no closing ']'");
    ep.host = std::string(authority.substr(1, close - 1));
    in6_addr v6{};
    if (::inet_pton(AF_INET6, ep.host.c_str(), &v6) != 1) {
      throw bad("\"" + ep.host + "\" is not an IPv6 address");
    }
    if (close + 1 >= authority.size() || authority[close + 1] != ':') throw bad("no port");
    port_text = authority.substr(close + 2);
  } else {
    const auto colon = authority.rfind(':');
    if (colon == std::string_view::npos) throw bad("no port");
    ep.host = std::string(authority.substr(0, colon));
    if (ep.host.find(':') != std::string::npos) throw bad("an IPv6 address must be in [brackets]");
    port_text = authority.substr(colon + 1);
  }
  if (ep.host.empty()) throw bad("no host");
  for (char c : ep.host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '/' || c == '?') {
      throw bad("the host has a character that cannot be in a host name");
    }
  }
  if (port_text.empty() || port_text.size() > 5) throw bad("the port must be 1 to 65535");
  unsigned port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') throw bad("the port must be a number");
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (port == 0 || port > 65535) throw bad("the port must be 1 to 65535");
  ep.port = static_cast<std::uint16_t>(port);
  return ep;
}

std::string Endpoint::authority() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string Endpoint::url() const { return "wss://" + authority() + path; }

}  // namespace kith::client
