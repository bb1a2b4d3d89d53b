// Asynchronous kithd connections for the load generator (client.hpp), on Boost.Beast and
// OpenSSL. One io_context per thread, no strands: a connection's handlers all run on its
// thread. The handshake follows clients/transport: verified TLS (the certificate against the
// CA file and the IP literal), the WebSocket upgrade on /v1/sync, then Hello -> Challenge ->
// Authenticate (nonce || TLS exporter || device key, signed by the device key) -> Authenticated.
#include "client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kith/crypto/sign.hpp"
#include "kith/sync/wire.hpp"

namespace kith::bench {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

namespace {

constexpr char kExporterLabel[] = "EXPORTER-kith-v1-auth-challenge";
constexpr auto kHandshakeTimeout = std::chrono::seconds(60);
constexpr std::size_t kMaxMessage = 4 * 1024 * 1024;

void make_tls_context(ssl::context& ctx, const ServerAddress& server) {
  ctx.set_verify_mode(ssl::verify_peer);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  beast::error_code ec;
  ctx.load_verify_file(server.ca_file.string(), ec);
  if (ec) {
    throw std::runtime_error("cannot read the CA file " + server.ca_file.string() + ": " +
                             ec.message());
  }
}

// The certificate must name the IP literal we connect to (never sent as SNI).
bool expect_ip(SSL* ssl, const std::string& host) {
  return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1;
}

}  // namespace

class Connection final : public Link, public std::enable_shared_from_this<Connection> {
 public:
  Connection(net::io_context& ioc, ssl::context& tls, const ServerAddress& server,
             const Device& device, std::shared_ptr<const LinkEvents> events, std::uint64_t tag,
             const std::atomic<bool>& stopping)
      : ws_(ioc, tls),
        server_(server),
        device_(device),
        events_(std::move(events)),
        tag_(tag),
        stopping_(stopping) {}

  void start() {
    beast::error_code ec;
    const auto address = net::ip::make_address(server_.host, ec);
    if (ec) return fail("`" + server_.host + "` is not an IP address");
    if (!expect_ip(ws_.next_layer().native_handle(), server_.host)) {
      return fail("cannot set up certificate checking");
    }
    beast::get_lowest_layer(ws_).expires_after(kHandshakeTimeout);
    beast::get_lowest_layer(ws_).async_connect(
        tcp::endpoint(address, server_.port),
        beast::bind_front_handler(&Connection::on_connect, shared_from_this()));
  }

  void send(Message bytes) override {
    if (dead_) return;
    queue_.push_back(std::move(bytes));
    if (!writing_) do_write();
  }
  std::size_t queued() const override { return queue_.size(); }
  std::uint64_t tag() const override { return tag_; }

  net::any_io_executor executor() { return ws_.get_executor(); }

  void close() {
    dead_ = true;
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

 private:
  void on_connect(beast::error_code ec) {
    if (ec) return fail("connect: " + ec.message());
    ws_.next_layer().async_handshake(
        ssl::stream_base::client,
        beast::bind_front_handler(&Connection::on_tls, shared_from_this()));
  }

  void on_tls(beast::error_code ec) {
    if (ec) return fail("TLS handshake: " + ec.message());
    ws_.async_handshake(server_.host + ":" + std::to_string(server_.port), "/v1/sync",
                        beast::bind_front_handler(&Connection::on_upgrade, shared_from_this()));
  }

  void on_upgrade(beast::error_code ec) {
    if (ec) return fail("WebSocket upgrade: " + ec.message());
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    ws_.read_message_max(kMaxMessage);
    ws_.binary(true);
    kith::v1::ClientMessage hello;
    hello.set_request_id(kHelloRequest);
    hello.mutable_hello()->set_protocol_version(sync::wire::kProtocolVersion);
    hello.mutable_hello()->set_device_certificate(device_.certificate_bytes);
    hello.mutable_hello()->set_client_name("kithd_load");
    send(std::make_shared<const std::string>(hello.SerializeAsString()));
    do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&Connection::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    const auto at = Clock::now();
    if (ec) return fail("read: " + ec.message());
    if (stopping_) return;
    const auto data = buffer_.cdata();
    const bool parsed = message_.ParseFromArray(data.data(), static_cast<int>(data.size()));
    buffer_.consume(buffer_.size());
    if (!parsed) return fail("the server sent a message that does not decode");
    if (authenticated_) {
      if (events_->message) events_->message(*this, message_, at);
    } else if (!on_handshake_message()) {
      return;
    }
    if (!dead_) do_read();
  }

  // Returns false when the connection failed.
  bool on_handshake_message() {
    if (message_.has_error()) {
      fail("the server refused the handshake: " + message_.error().message() + " (" +
           kith::v1::ErrorCode_Name(message_.error().code()) + ")");
      return false;
    }
    if (message_.has_challenge() && message_.request_id() == kHelloRequest) {
      std::array<std::uint8_t, 32> binding{};
      if (SSL_export_keying_material(ws_.next_layer().native_handle(), binding.data(),
                                     binding.size(), kExporterLabel, sizeof kExporterLabel - 1,
                                     nullptr, 0, 0) != 1) {
        fail("cannot derive the TLS channel binding");
        return false;
      }
      const auto& key = device_.secrets.device.signing;
      crypto::ByteWriter signed_bytes(96);
      signed_bytes.raw(std::string_view(message_.challenge().nonce()))
          .raw(crypto::ByteView(binding))
          .raw(key.public_key().bytes());
      const auto signature = key.sign(crypto::labels::kAuthChallenge, signed_bytes.bytes());
      kith::v1::ClientMessage answer;
      answer.set_request_id(kAuthenticateRequest);
      answer.mutable_authenticate()->set_signature(signature.data(), signature.size());
      send(std::make_shared<const std::string>(answer.SerializeAsString()));
      return true;
    }
    if (message_.has_authenticated() && message_.request_id() == kAuthenticateRequest) {
      authenticated_ = true;
      if (events_->authenticated) events_->authenticated(*this);
      return true;
    }
    if (message_.has_pong()) return true;
    fail("unexpected message during the handshake (body " +
         std::to_string(static_cast<int>(message_.body_case())) + ")");
    return false;
  }

  void do_write() {
    writing_ = true;
    ws_.async_write(net::buffer(*queue_.front()),
                    beast::bind_front_handler(&Connection::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (ec) return fail("write: " + ec.message());
    queue_.pop_front();
    if (!queue_.empty() && !dead_) do_write();
  }

  void fail(const std::string& why) {
    if (dead_) return;
    dead_ = true;
    queue_.clear();
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    if (!stopping_ && events_->failed) events_->failed(*this, why);
  }

  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws_;
  const ServerAddress& server_;
  const Device& device_;
  std::shared_ptr<const LinkEvents> events_;
  std::uint64_t tag_;
  const std::atomic<bool>& stopping_;
  beast::flat_buffer buffer_;
  kith::v1::ServerMessage message_;
  std::deque<Message> queue_;
  bool writing_ = false;
  bool authenticated_ = false;
  bool dead_ = false;
};

// Calls a function every period on one io_context, on an absolute schedule.
class Ticker : public std::enable_shared_from_this<Ticker> {
 public:
  Ticker(net::io_context& ioc, std::chrono::microseconds period, std::function<bool()> tick)
      : timer_(ioc), period_(period), tick_(std::move(tick)) {}
  void start() {
    next_ = Clock::now() + period_;
    arm();
  }

 private:
  void arm() {
    timer_.expires_at(next_);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || !self->tick_()) return;
      self->next_ += self->period_;
      const auto now = Clock::now();
      if (self->next_ < now) self->next_ = now;  // behind: do not try to catch up in a burst
      self->arm();
    });
  }
  net::steady_timer timer_;
  std::chrono::microseconds period_;
  std::function<bool()> tick_;
  Clock::time_point next_;
};

struct IoPool::Impl {
  struct Worker {
    net::io_context ioc{1};
    net::executor_work_guard<net::io_context::executor_type> guard{ioc.get_executor()};
    std::thread thread;
  };

  ServerAddress server;
  ssl::context tls{ssl::context::tls_client};
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::vector<std::shared_ptr<Connection>> connections;  // guarded by mu
  bool stopped = false;

  void stop() {
    if (stopped) return;
    stopped = true;
    stopping = true;
    std::vector<std::shared_ptr<Connection>> all;
    {
      std::lock_guard lock(mu);
      all.swap(connections);
    }
    // Each socket is closed on its own thread; the stop is queued after the closes.
    for (auto& c : all) net::post(c->executor(), [c] { c->close(); });
    all.clear();
    for (auto& w : workers) {
      w->guard.reset();
      net::post(w->ioc, [ioc = &w->ioc] { ioc->stop(); });
    }
    for (auto& w : workers) {
      if (w->thread.joinable()) w->thread.join();
    }
  }
};

IoPool::IoPool(unsigned threads, ServerAddress server) : impl_(std::make_unique<Impl>()) {
  impl_->server = std::move(server);
  make_tls_context(impl_->tls, impl_->server);
  for (unsigned i = 0; i < std::max(1u, threads); ++i) {
    auto w = std::make_unique<Impl::Worker>();
    w->thread = std::thread([ioc = &w->ioc] { ioc->run(); });
    impl_->workers.push_back(std::move(w));
  }
}

IoPool::~IoPool() { stop(); }

unsigned IoPool::threads() const noexcept { return static_cast<unsigned>(impl_->workers.size()); }

Link* IoPool::open(unsigned thread, const Device& device, std::shared_ptr<const LinkEvents> events,
                   std::uint64_t tag) {
  auto& w = *impl_->workers.at(thread % impl_->workers.size());
  auto c = std::make_shared<Connection>(w.ioc, impl_->tls, impl_->server, device,
                                        std::move(events), tag, impl_->stopping);
  {
    std::lock_guard lock(impl_->mu);
    impl_->connections.push_back(c);
  }
  net::post(w.ioc, [c] { c->start(); });
  return c.get();
}

void IoPool::post(unsigned thread, std::function<void()> f) {
  net::post(impl_->workers.at(thread % impl_->workers.size())->ioc, std::move(f));
}

void IoPool::every(unsigned thread, std::chrono::microseconds period, std::function<bool()> tick) {
  auto& ioc = impl_->workers.at(thread % impl_->workers.size())->ioc;
  auto t = std::make_shared<Ticker>(ioc, period, [impl = impl_.get(), tick = std::move(tick)] {
    return !impl->stopping && tick();
  });
  net::post(ioc, [t] { t->start(); });
}

void IoPool::stop() { impl_->stop(); }

std::string https_get(const ServerAddress& server, const std::string& target,
                      std::chrono::milliseconds timeout) {
  net::io_context ioc;
  ssl::context tls{ssl::context::tls_client};
  make_tls_context(tls, server);
  beast::ssl_stream<beast::tcp_stream> stream(ioc, tls);
  if (!expect_ip(stream.native_handle(), server.host)) {
    throw std::runtime_error("cannot set up certificate checking");
  }
  beast::get_lowest_layer(stream).expires_after(timeout);
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, server.host);
  req.set(http::field::connection, "close");
  http::response<http::string_body> res;
  beast::flat_buffer buffer;
  beast::error_code failure;
  const auto endpoint = tcp::endpoint(net::ip::make_address(server.host), server.port);
  beast::get_lowest_layer(stream).async_connect(endpoint, [&](beast::error_code ec) {
    if (ec) return void(failure = ec);
    stream.async_handshake(ssl::stream_base::client, [&](beast::error_code ec2) {
      if (ec2) return void(failure = ec2);
      http::async_write(stream, req, [&](beast::error_code ec3, std::size_t) {
        if (ec3) return void(failure = ec3);
        http::async_read(stream, buffer, res, [&](beast::error_code ec4, std::size_t) {
          if (ec4) failure = ec4;
        });
      });
    });
  });
  ioc.run();
  if (failure) {
    throw std::runtime_error("GET " + target + " failed: " + failure.message());
  }
  if (res.result() != http::status::ok) {
    throw std::runtime_error("GET " + target + " answered " +
                             std::to_string(res.result_int()));
  }
  return std::move(res.body());
}

}  // namespace kith::bench
