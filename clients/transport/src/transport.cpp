// The blocking TLS WebSocket client (transport.hpp), on Boost.Beast and OpenSSL.
//
// Blocking with deadlines is built from asynchronous operations on a private io_context: each
// call starts its operation and runs the context until the operation completes or the deadline
// passes; past the deadline it closes the socket, which makes every pending operation complete
// at once, and reports a timeout. A read is kept in flight between calls, so a receive() that
// times out leaves nothing half-done (no read is ever cancelled in the middle of a frame) and
// the next receive() simply continues it; pings are answered whenever the context runs.
//
// This is the only client translation unit that includes Beast (it is slow to compile).

#include "kith/client/transport.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cctype>
#include <deque>
#include <utility>

#include "kith/crypto/sign.hpp"
#include "kith/sync/engine.hpp"
#include "kith/sync/wire.hpp"

namespace kith::client {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using Kind = TransportError::Kind;

namespace {

constexpr char kExporterLabel[] = "EXPORTER-kith-v1-auth-challenge";
// Messages read ahead of receive(): only what arrives while a send is waiting.
constexpr std::size_t kMaxInbox = 16;
// A message is read in pieces of at most this, so its size is checked as it grows.
constexpr std::size_t kReadChunk = 64 * 1024;
// After the socket is closed, pending operations finish at once; this only bounds a bug.
constexpr auto kAbortGrace = std::chrono::seconds(2);

std::string ms(std::chrono::milliseconds t) { return std::to_string(t.count()) + " ms"; }

// "Connection refused" -> "connection refused", to sit inside a sentence.
std::string describe(const error_code& ec) {
  std::string text = ec.message();
  if (!text.empty() && std::isupper(static_cast<unsigned char>(text[0])) &&
      (text.size() < 2 || !std::isupper(static_cast<unsigned char>(text[1])))) {
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  }
  return text;
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

ssl::context make_tls_context(const TlsOptions& options) {
  ssl::context ctx(ssl::context::tls_client);
  if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1) {
    throw TransportError(Kind::kTlsFailed, "cannot require TLS 1.2 or newer from this OpenSSL");
  }
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  ctx.set_verify_mode(ssl::verify_peer);
  error_code ec;
  if (options.ca_file) {
    const std::string path = options.ca_file->string();
    std::error_code fs_ec;
    if (!std::filesystem::is_regular_file(*options.ca_file, fs_ec)) {
      throw TransportError(Kind::kTlsFailed, "the CA file " + path +
                                                 " does not exist; pass --ca with the server's "
                                                 "certificate (kithd writes DATA/dev-cert.pem)");
    }
    ctx.load_verify_file(path, ec);
    if (ec) {
      throw TransportError(Kind::kTlsFailed, "cannot use " + path + " as a CA file (" +
                                                 describe(ec) + "); it must hold PEM certificates");
    }
  } else {
    ctx.set_default_verify_paths(ec);
    if (ec) {
      throw TransportError(Kind::kTlsFailed, "cannot load the system's trusted certificates (" +
                                                 describe(ec) +
                                                 "); pass --ca with the server's certificate");
    }
  }
  return ctx;
}

std::string body_name(const kith::v1::ServerMessage& msg) {
  const auto* field =
      kith::v1::ServerMessage::descriptor()->FindFieldByNumber(static_cast<int>(msg.body_case()));
  return field != nullptr ? field->name() : "an empty message";
}

}  // namespace

// --- Connection::Impl ----------------------------------------------------------------------

struct Connection::Impl {
  Impl(const Endpoint& ep, const TlsOptions& options)
      : endpoint(ep),
        where(ep.authority()),
        timeout(options.timeout),
        ca_file(options.ca_file),
        ctx(make_tls_context(options)),
        ws(ioc, ctx) {}

  ~Impl() {
    // Pending handlers are destroyed with the io_context, never run.
    error_code ignored;
    beast::get_lowest_layer(ws).close(ignored);
  }

  Endpoint endpoint;
  std::string where;  // HOST:PORT, for messages
  std::chrono::milliseconds timeout;
  std::optional<std::filesystem::path> ca_file;
  net::io_context ioc{1};
  ssl::context ctx;
  websocket::stream<ssl::stream<tcp::socket>> ws;

  bool open = false;     // the WebSocket handshake completed and nothing has ended it
  bool closing = false;  // close() started: no more reads
  bool read_pending = false;
  bool close_pending = false;  // an async_close started by refuse_oversized()
  std::size_t max_message = sync::wire::Limits{}.max_message_bytes;
  beast::flat_buffer read_buffer;
  std::deque<RawMessage> inbox;
  std::optional<TransportError> ended;  // why the connection is over, once it is
  std::optional<CloseReason> close_reason;
  crypto::Bytes write_buffer;  // owned here so an abandoned write never points at a caller's

  SSL* ssl_handle() { return ws.next_layer().native_handle(); }

  // Runs handlers until done() or the deadline; true when done. Runs ready handlers at least
  // once, so a zero timeout still collects what has already arrived.
  template <class Done>
  bool run_until(Clock::time_point deadline, Done done) {
    for (;;) {
      if (done()) return true;
      if (ioc.stopped()) ioc.restart();
      if (Clock::now() >= deadline) {
        ioc.poll();
        return done();
      }
      if (ioc.run_one_until(deadline) == 0 && ioc.stopped()) return done();  // nothing pending
    }
  }

  // Drops the connection: closing the socket makes every pending operation finish now.
  template <class Done>
  void abort(Done done) {
    open = false;
    error_code ignored;
    beast::get_lowest_layer(ws).close(ignored);
    run_until(Clock::now() + kAbortGrace, done);
  }

  void end(TransportError why) {
    open = false;
    if (!ended) ended = std::move(why);
  }

  [[noreturn]] void throw_ended() {
    finish_close(Clock::now() + timeout);
    if (ended) throw *ended;
    throw TransportError(Kind::kClosed, "the connection to " + where + " is closed");
  }

  void connect();
  void tls_handshake(Clock::time_point deadline);
  void websocket_handshake(Clock::time_point deadline);
  void start_read(bool mid_message = false);
  void on_read(const error_code& ec);
  void refuse_oversized();
  void finish_close(Clock::time_point deadline) noexcept;
  std::optional<RawMessage> receive(std::chrono::milliseconds wait);
  void write(bool binary, crypto::Bytes data);
  void close() noexcept;
};

void Connection::Impl::connect() {
  const auto deadline = Clock::now() + timeout;
  tcp::resolver resolver(ioc);
  tcp::resolver::results_type addresses;
  error_code ec;
  bool done = false;
  resolver.async_resolve(endpoint.host, std::to_string(endpoint.port),
                         tcp::resolver::numeric_service,
                         [&](const error_code& e, tcp::resolver::results_type r) {
                           ec = e;
                           addresses = std::move(r);
                           done = true;
                         });
  if (!run_until(deadline, [&] { return done; })) {
    resolver.cancel();
    throw TransportError(Kind::kUnreachable, "cannot reach " + where + ": the name " +
                                                 endpoint.host + " did not resolve within " +
                                                 ms(timeout));
  }
  if (ec) throw TransportError(Kind::kUnreachable, "cannot reach " + where + ": " + describe(ec));

  done = false;
  net::async_connect(beast::get_lowest_layer(ws), addresses,
                     [&](const error_code& e, const tcp::endpoint&) {
                       ec = e;
                       done = true;
                     });
  if (!run_until(deadline, [&] { return done; })) {
    abort([&] { return done; });
    throw TransportError(Kind::kUnreachable,
                         "cannot reach " + where + ": no answer within " + ms(timeout));
  }
  if (ec) throw TransportError(Kind::kUnreachable, "cannot reach " + where + ": " + describe(ec));
  beast::get_lowest_layer(ws).set_option(tcp::no_delay(true), ec);  // small messages, no Nagle

  tls_handshake(deadline);
  websocket_handshake(deadline);
  open = true;
}

void Connection::Impl::tls_handshake(Clock::time_point deadline) {
  SSL* ssl = ssl_handle();
  // An IP literal is checked against the certificate's IP addresses and is never sent as SNI
  // (RFC 6066 allows only DNS names there); a name is both sent and checked.
  bool configured = false;
  if (is_ip_literal(endpoint.host)) {
    configured = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), endpoint.host.c_str()) == 1;
  } else {
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    configured = SSL_set_tlsext_host_name(ssl, endpoint.host.c_str()) == 1 &&
                 SSL_set1_host(ssl, endpoint.host.c_str()) == 1;
  }
  if (!configured) {
    throw TransportError(Kind::kTlsFailed,
                         "cannot set up TLS for the host name \"" + endpoint.host + "\"");
  }

  error_code ec;
  bool done = false;
  ws.next_layer().async_handshake(ssl::stream_base::client, [&](const error_code& e) {
    ec = e;
    done = true;
  });
  if (!run_until(deadline, [&] { return done; })) {
    abort([&] { return done; });
    throw TransportError(Kind::kTimeout, "the TLS handshake with " + where +
                                             " did not finish within " + ms(timeout));
  }
  if (!ec) return;

  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    const std::string reason = X509_verify_cert_error_string(verify);
    if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      throw TransportError(Kind::kTlsUntrusted,
                           "the server's certificate is not valid for " + endpoint.host + " (" +
                               reason +
                               "); connect with a name or address the certificate lists, or "
                               "give the server a certificate for " +
                               endpoint.host);
    }
    const std::string trusted_by =
        ca_file ? "by " + ca_file->string() : std::string("by this system");
    throw TransportError(Kind::kTlsUntrusted, "the server's certificate is not trusted " +
                                                  trusted_by + ": " + reason +
                                                  "; pass --ca with the server's certificate");
  }
  if (ec == net::error::eof || ec == ssl::error::stream_truncated ||
      ec == net::error::connection_reset) {
    throw TransportError(Kind::kTlsFailed, where +
                                               " closed the connection during the TLS "
                                               "handshake; is it kithd's TLS port?");
  }
  throw TransportError(Kind::kTlsFailed,
                       "TLS with " + where + " failed: " + describe(ec) +
                           (ec.category() == net::error::get_ssl_category()
                                ? "; is it kithd's TLS port, speaking TLS 1.2 or newer?"
                                : ""));
}

void Connection::Impl::websocket_handshake(Clock::time_point deadline) {
  ws.set_option(websocket::stream_base::decorator(
      [](websocket::request_type& req) { req.set(beast::http::field::user_agent, "kith"); }));
  // The size limit is enforced in on_read() rather than by Beast: when Beast refuses a frame it
  // closes the TLS session while the server is still sending, and reports the resulting TLS
  // error ("application data after close notify") instead of the size.
  ws.read_message_max(0);
  ws.binary(true);
  websocket::response_type response;
  error_code ec;
  bool done = false;
  ws.async_handshake(response, where, endpoint.path, [&](const error_code& e) {
    ec = e;
    done = true;
  });
  if (!run_until(deadline, [&] { return done; })) {
    abort([&] { return done; });
    throw TransportError(Kind::kTimeout, "the WebSocket upgrade on " + endpoint.url() +
                                             " did not finish within " + ms(timeout));
  }
  if (ec == websocket::error::upgrade_declined) {
    throw TransportError(Kind::kHandshake,
                         "the server refused the WebSocket upgrade on " + endpoint.url() +
                             ": HTTP " + std::to_string(response.result_int()) + " " +
                             std::string(response.reason()) + "; is the path right?");
  }
  if (ec) {
    throw TransportError(Kind::kHandshake,
                         "the WebSocket upgrade on " + endpoint.url() + " failed: " + describe(ec));
  }
}

void Connection::Impl::start_read(bool mid_message) {
  if (read_pending || !open || closing) return;
  if (!mid_message && inbox.size() >= kMaxInbox) return;
  read_pending = true;
  ws.async_read_some(read_buffer, kReadChunk,
                     [this](const error_code& ec, std::size_t) { on_read(ec); });
}

void Connection::Impl::on_read(const error_code& ec) {
  read_pending = false;
  if (!ec) {
    if (read_buffer.size() > max_message) return refuse_oversized();
    if (!ws.is_message_done()) return start_read(/*mid_message=*/true);
    const auto data = read_buffer.cdata();
    const auto* begin = static_cast<const std::uint8_t*>(data.data());
    inbox.push_back(RawMessage{ws.got_binary(), crypto::Bytes(begin, begin + data.size())});
    read_buffer.consume(read_buffer.size());
    start_read();
    return;
  }
  if (ec == websocket::error::closed) {
    const auto& cr = ws.reason();
    close_reason = CloseReason{static_cast<std::uint16_t>(cr.code),
                               std::string(cr.reason.data(), cr.reason.size())};
    std::string text = "the server closed the connection (" + std::to_string(cr.code);
    if (!cr.reason.empty()) text += ": " + close_reason->reason;
    end(TransportError(Kind::kClosed, text + ")"));
  } else if (ec == net::error::operation_aborted) {
    end(TransportError(Kind::kClosed, "the connection to " + where + " is closed"));
  } else {
    // eof or stream_truncated: the server went away without a close frame (a crash, kill -9,
    // a proxy timing out); anything else is a broken network or a bad record.
    end(TransportError(Kind::kClosed, "the connection to " + where +
                                          " was lost without a close frame: " + describe(ec)));
  }
}

// Ends the connection with 1009 (message too big). The close runs when the io_context next
// does, in finish_close(); it discards the rest of the message as it arrives.
void Connection::Impl::refuse_oversized() {
  end(TransportError(Kind::kProtocol, "the server sent a message over " +
                                          std::to_string(max_message) +
                                          " bytes; the connection was closed"));
  read_buffer.clear();
  read_buffer.shrink_to_fit();
  closing = true;
  close_pending = true;
  ws.async_close(websocket::close_code::too_big,
                 [this](const error_code&) { close_pending = false; });
}

void Connection::Impl::finish_close(Clock::time_point deadline) noexcept {
  if (!close_pending) return;
  try {
    if (!run_until(deadline, [&] { return !close_pending; })) {
      abort([&] { return !close_pending; });
    }
  } catch (...) {
    error_code ignored;
    beast::get_lowest_layer(ws).close(ignored);
  }
}

std::optional<RawMessage> Connection::Impl::receive(std::chrono::milliseconds wait) {
  if (inbox.empty()) {
    if (ended || !open) throw_ended();
    start_read();
    run_until(Clock::now() + wait, [&] { return !inbox.empty() || ended.has_value(); });
  }
  if (inbox.empty()) {
    if (ended) throw_ended();
    return std::nullopt;
  }
  RawMessage msg = std::move(inbox.front());
  inbox.pop_front();
  start_read();
  return msg;
}

void Connection::Impl::write(bool binary, crypto::Bytes data) {
  if (ended || !open) throw_ended();
  write_buffer = std::move(data);
  ws.binary(binary);
  error_code ec;
  bool done = false;
  ws.async_write(net::buffer(write_buffer), [&](const error_code& e, std::size_t) {
    ec = e;
    done = true;
  });
  if (!run_until(Clock::now() + timeout, [&] { return done; })) {
    abort([&] { return done; });
    end(TransportError(Kind::kTimeout, "sending to " + where + " took longer than " + ms(timeout) +
                                           "; the connection was dropped"));
    throw_ended();
  }
  if (ec) {
    end(TransportError(Kind::kClosed,
                       "the connection to " + where + " was lost while sending: " + describe(ec)));
    throw_ended();
  }
}

void Connection::Impl::close() noexcept {
  try {
    if (!open || ended) {
      finish_close(Clock::now() + timeout);
      error_code ignored;
      beast::get_lowest_layer(ws).close(ignored);
      open = false;
      return;
    }
    closing = true;
    bool done = false;
    ws.async_close(websocket::close_code::normal, [&](const error_code&) { done = true; });
    if (!run_until(Clock::now() + timeout, [&] { return done && !read_pending; })) {
      abort([&] { return done && !read_pending; });
    }
    if (!close_reason && ws.reason().code != websocket::close_code::none) {
      close_reason = CloseReason{static_cast<std::uint16_t>(ws.reason().code),
                                 std::string(ws.reason().reason.data(), ws.reason().reason.size())};
    }
    end(TransportError(Kind::kClosed, "the connection to " + where + " was closed"));
    error_code ignored;
    beast::get_lowest_layer(ws).close(ignored);
  } catch (...) {
    // close() is the cleanup path; the socket is dropped by ~Impl at worst.
    open = false;
  }
}

// --- Connection ----------------------------------------------------------------------------

Connection::Connection(const Endpoint& endpoint, std::unique_ptr<Impl> impl)
    : endpoint_(endpoint), impl_(std::move(impl)) {}

Connection::~Connection() = default;

std::unique_ptr<Connection> Connection::open(const Endpoint& endpoint, const TlsOptions& options) {
  if (endpoint.host.empty() || endpoint.port == 0) {
    throw TransportError(Kind::kUnreachable, "no server address: the host is empty or the port 0");
  }
  auto impl = std::make_unique<Impl>(endpoint, options);
  impl->connect();
  return std::unique_ptr<Connection>(new Connection(endpoint, std::move(impl)));
}

void Connection::send(const kith::v1::ClientMessage& msg) {
  impl_->write(true, sync::wire::encode(msg));
}

void Connection::send_binary(crypto::ByteView bytes) {
  impl_->write(true, crypto::Bytes(bytes.begin(), bytes.end()));
}

void Connection::send_text(std::string_view text) {
  const auto bytes = crypto::as_bytes(text);
  impl_->write(false, crypto::Bytes(bytes.begin(), bytes.end()));
}

std::optional<RawMessage> Connection::receive_raw(std::chrono::milliseconds timeout) {
  return impl_->receive(timeout);
}

std::optional<kith::v1::ServerMessage> Connection::receive(std::chrono::milliseconds timeout) {
  auto raw = impl_->receive(timeout);
  if (!raw) return std::nullopt;
  if (!raw->binary) {
    throw TransportError(Kind::kProtocol, "the server sent a text message (" +
                                              std::to_string(raw->data.size()) +
                                              " bytes); Kith messages are binary");
  }
  auto decoded = sync::wire::decode_server(raw->data);
  if (!decoded) {
    throw TransportError(Kind::kProtocol, "the server sent a message that does not decode: " +
                                              decoded.error().message);
  }
  return std::move(decoded).value();
}

void Connection::close() noexcept { impl_->close(); }

std::optional<CloseReason> Connection::close_reason() const { return impl_->close_reason; }

bool Connection::is_open() const noexcept { return impl_->open && !impl_->ended; }

Connection::ChannelBinding Connection::channel_binding() const {
  ChannelBinding out{};
  if (SSL_export_keying_material(impl_->ssl_handle(), out.data(), out.size(), kExporterLabel,
                                 sizeof(kExporterLabel) - 1, nullptr, 0, 0) != 1) {
    ERR_clear_error();
    throw TransportError(Kind::kTlsFailed, "cannot derive the TLS channel binding");
  }
  return out;
}

void Connection::authenticate(const sync::DeviceIdentity& me, std::string_view client_name) {
  const auto timeout = impl_->timeout;
  // The reply to request `id`, which must be `expected`; an Error becomes kServerError.
  auto await_reply = [&](std::uint64_t id, kith::v1::ServerMessage::BodyCase expected,
                         const char* what) {
    auto reply = receive(timeout);
    if (!reply) {
      throw TransportError(Kind::kTimeout, std::string("the server did not answer ") + what +
                                               " within " + ms(timeout));
    }
    if (reply->has_error()) {
      const auto& error = reply->error();
      const std::string& name = kith::v1::ErrorCode_Name(error.code());
      throw TransportError(Kind::kServerError,
                           std::string("the server refused ") + what + ": " + error.message() +
                               " (" + (name.empty() ? std::to_string(error.code()) : name) + ")",
                           error.code());
    }
    if (reply->body_case() != expected || reply->request_id() != id) {
      throw TransportError(Kind::kProtocol, std::string("the server answered ") + what +
                                                " (request " + std::to_string(id) + ") with " +
                                                body_name(*reply) + " for request " +
                                                std::to_string(reply->request_id()));
    }
    return std::move(*reply);
  };

  const crypto::SigningKey& device_key = me.secrets.device.signing;
  const crypto::ByteView device_public = device_key.public_key().bytes();

  kith::v1::ClientMessage hello;
  hello.set_request_id(next_request_id());
  const crypto::Bytes certificate = me.certificate.serialize();
  hello.mutable_hello()->set_protocol_version(sync::wire::kProtocolVersion);
  hello.mutable_hello()->set_device_certificate(certificate.data(), certificate.size());
  hello.mutable_hello()->set_client_name(std::string(client_name));
  send(hello);
  const auto challenge =
      await_reply(hello.request_id(), kith::v1::ServerMessage::kChallenge, "Hello");

  const ChannelBinding binding = channel_binding();
  crypto::ByteWriter signed_bytes(sync::wire::kNonceBytes + kChannelBindingSize +
                                  crypto::kVerifyKeySize);
  signed_bytes.raw(std::string_view(challenge.challenge().nonce()))
      .raw(crypto::ByteView(binding))
      .raw(device_public);
  const crypto::Signature signature =
      device_key.sign(crypto::labels::kAuthChallenge, signed_bytes.bytes());

  kith::v1::ClientMessage answer;
  answer.set_request_id(next_request_id());
  answer.mutable_authenticate()->set_signature(signature.data(), signature.size());
  send(answer);
  const auto authenticated =
      await_reply(answer.request_id(), kith::v1::ServerMessage::kAuthenticated, "Authenticate");

  const auto same = [](const std::string& got, crypto::ByteView want) {
    return crypto::constant_time_equal(crypto::as_bytes(got), want);
  };
  if (!same(authenticated.authenticated().account_id(), me.certificate.identity().bytes()) ||
      !same(authenticated.authenticated().device_id(), device_public)) {
    throw TransportError(Kind::kProtocol,
                         "the server authenticated a different account or device than this one");
  }
}

}  // namespace kith::client
