// The scripted server on synchronous Beast: one thread accepts, one thread per connection runs
// the TLS handshake, the upgrade and the script. This is the only test translation unit that
// includes Beast's WebSocket (slow to compile).

// As kith_server and kith_transport are compiled (their CMakeLists), which share the test
// binary, so that Asio's inline code is the same in every translation unit.
#ifndef BOOST_ASIO_NO_DEPRECATED
#define BOOST_ASIO_NO_DEPRECATED
#endif

#include "support/scripted_server.hpp"

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "kith/sync/wire.hpp"

namespace kith::test {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using boost::system::error_code;
using WsStream = websocket::stream<ssl::stream<tcp::socket>>;

class BeastPeer final : public ScriptedPeer {
 public:
  explicit BeastPeer(WsStream& ws) : ws_(ws) {}

  std::optional<std::string> read() override {
    beast::flat_buffer buffer;
    error_code ec;
    ws_.read(buffer, ec);
    if (ec) return std::nullopt;
    text_ = ws_.got_text();
    return beast::buffers_to_string(buffer.data());
  }
  bool got_text() const override { return text_; }
  std::uint16_t client_close_code() const override {
    return static_cast<std::uint16_t>(ws_.reason().code);
  }

  using ScriptedPeer::send_raw;
  void send_raw(std::string_view bytes, bool binary) override {
    ws_.binary(binary);
    ws_.write(net::buffer(bytes.data(), bytes.size()));
  }
  void close(std::uint16_t code, std::string_view reason) override {
    const websocket::close_reason cr(static_cast<websocket::close_code>(code), reason);
    error_code ec;
    ws_.close(cr, ec);
  }
  void drop() override {
    error_code ec;
    beast::get_lowest_layer(ws_).shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws_).close(ec);
  }

  std::array<std::uint8_t, 32> exporter(std::string_view label) override {
    std::array<std::uint8_t, 32> out{};
    const std::string l(label);
    if (SSL_export_keying_material(ws_.next_layer().native_handle(), out.data(), out.size(),
                                   l.c_str(), l.size(), nullptr, 0, 0) != 1) {
      throw std::runtime_error("server: SSL_export_keying_material failed");
    }
    return out;
  }
  std::string sni() override {
    const char* name =
        SSL_get_servername(ws_.next_layer().native_handle(), TLSEXT_NAMETYPE_host_name);
    return name != nullptr ? name : "";
  }

 private:
  WsStream& ws_;
  bool text_ = false;
};

}  // namespace

std::optional<kith::v1::ClientMessage> ScriptedPeer::read_message() {
  const auto bytes = read();
  if (!bytes) return std::nullopt;
  auto decoded = sync::wire::decode_client(crypto::as_bytes(*bytes));
  if (!decoded) throw std::runtime_error("the client sent: " + decoded.error().message);
  return std::move(decoded).value();
}

void ScriptedPeer::send(const kith::v1::ServerMessage& msg) {
  const crypto::Bytes bytes = sync::wire::encode(msg);
  send_raw(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), true);
}

std::array<std::uint8_t, 32> ScriptedPeer::channel_binding() {
  return exporter("EXPORTER-kith-v1-auth-challenge");
}

struct ScriptedServer::Impl {
  Impl(const TestCertificate& cert, Script s, unsigned reject)
      : script(std::move(s)), reject_status(reject) {
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    ctx.use_certificate_chain(net::buffer(cert.cert_pem));
    ctx.use_private_key(net::buffer(cert.key_pem), ssl::context::pem);
    acceptor.open(tcp::v4());
    acceptor.bind(tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), 0));
    acceptor.listen();
    port = acceptor.local_endpoint().port();
    accept_thread = std::thread([this] { accept_loop(); });
  }

  ~Impl() {
    stopping = true;
    {
      error_code ec;
      tcp::socket wake(ioc);  // accept() returns for this connection and sees `stopping`
      wake.connect(tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), port), ec);
      accept_thread.join();
    }
    std::vector<std::thread> to_join;
    {
      std::lock_guard lock(mutex);
      for (int fd : open_fds) ::shutdown(fd, SHUT_RDWR);  // blocked reads return
      to_join.swap(threads);
    }
    for (auto& t : to_join) t.join();
  }

  void accept_loop() {
    for (;;) {
      tcp::socket socket(ioc);
      error_code ec;
      acceptor.accept(socket, ec);
      if (stopping) return;
      if (ec) continue;
      std::lock_guard lock(mutex);
      open_fds.push_back(socket.native_handle());
      threads.emplace_back([this, s = std::move(socket)]() mutable { serve(std::move(s)); });
    }
  }

  void note(std::string error) {
    std::lock_guard lock(mutex);
    errors.push_back(std::move(error));
  }

  void serve(tcp::socket socket) {
    const int fd = socket.native_handle();
    WsStream ws(std::move(socket), ctx);
    // Declared after `ws`, so it runs first: the destructor must never shut down a descriptor
    // number that has been closed and handed to someone else.
    struct Unregister {
      Impl* self;
      int fd;
      ~Unregister() {
        std::lock_guard lock(self->mutex);
        std::erase(self->open_fds, fd);
      }
    } unregister{this, fd};

    error_code ec;
    ws.next_layer().handshake(ssl::stream_base::server, ec);
    if (ec) return note("tls: " + ec.message());
    if (reject_status != 0) {
      beast::flat_buffer buffer;
      http::request<http::string_body> req;
      http::read(ws.next_layer(), buffer, req, ec);
      http::response<http::string_body> res{static_cast<http::status>(reject_status), 11};
      res.body() = "no WebSocket here";
      res.prepare_payload();
      http::write(ws.next_layer(), res, ec);
      return;
    }
    ws.accept(ec);
    if (ec) return note("upgrade: " + ec.message());
    BeastPeer peer(ws);
    try {
      script(peer);
    } catch (const std::exception& e) {
      note(std::string("script: ") + e.what());
    }
    // Until the client goes away (or the destructor shuts the socket down).
    while (peer.read()) {
    }
  }

  Script script;
  unsigned reject_status;
  net::io_context ioc;  // for the sockets; never run (everything here is synchronous)
  ssl::context ctx{ssl::context::tls_server};
  tcp::acceptor acceptor{ioc};
  std::uint16_t port = 0;
  std::atomic<bool> stopping{false};
  std::thread accept_thread;
  mutable std::mutex mutex;
  std::vector<int> open_fds;
  std::vector<std::thread> threads;
  std::vector<std::string> errors;
};

ScriptedServer::ScriptedServer(const TestCertificate& cert, Script script, unsigned reject_status)
    : impl_(std::make_unique<Impl>(cert, std::move(script), reject_status)) {}

ScriptedServer::~ScriptedServer() = default;

std::uint16_t ScriptedServer::port() const { return impl_->port; }

client::Endpoint ScriptedServer::endpoint(const std::string& host) const {
  client::Endpoint ep;
  ep.host = host;
  ep.port = impl_->port;
  return ep;
}

std::vector<std::string> ScriptedServer::errors() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->errors;
}

}  // namespace kith::test
