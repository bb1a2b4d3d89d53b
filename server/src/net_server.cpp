// Boost.Beast sessions for kithd (see server.hpp). The shape follows Beast's
// advanced_server_flex and websocket chat-multi examples: a strand per connection,
// shared_from_this in every handler, one write in flight, a bounded outbound queue, and every
// handler's error going through one fail() that treats normal endings as normal.
#include <google/protobuf/io/coded_stream.h>
#include <openssl/ssl.h>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "kith/crypto/error.hpp"
#include "kith/crypto/identity.hpp"
#include "kith/crypto/secret.hpp"
#include "kith/sync/wire.hpp"
#include "log.hpp"
#include "server.hpp"
#include "tls_stream.hpp"

namespace kith::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using kith::v1::ErrorCode;

namespace {

constexpr char kExporterLabel[] = "EXPORTER-kith-v1-auth-challenge";
constexpr std::size_t kLowWater = 1024 * 1024;  // catch-up refills the queue below this
// Queued messages are gathered into one TLS write up to about this many bytes: one full TLS
// record, so a batch costs one record and one write(2).
constexpr std::size_t kGatherBytes = 16 * 1024;
// Server::deliver_together hands its messages over early once it holds this many.
constexpr std::size_t kMaxHeldMessages = 256;

std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

std::string as_string(crypto::ByteView b) { return std::string(b.begin(), b.end()); }

// The request_id of an encoded ClientMessage, read from its first field without decoding the
// rest, for the Error that refuses a frame that is not decoded (over the rate) or does not pass
// the decoder, so a client with several requests in flight knows which one to send again.
// Encoders write field 1 first; otherwise (or for garbage) 0.
std::uint64_t peek_request_id(const std::string& frame) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(frame.data()),
                                            static_cast<int>(frame.size()));
  std::uint64_t id = 0;
  if (in.ReadTag() == ((1u << 3) | 0u) && in.ReadVarint64(&id)) return id;
  return 0;
}

// Normal ways for a connection to end are not worth an error line.
bool normal_end(beast::error_code ec) {
  return ec == net::error::operation_aborted || ec == websocket::error::closed ||
         ec == net::error::eof || ec == net::error::connection_reset ||
         ec == beast::error::timeout ||
         // A peer that closes without close_notify; harmless here, since every message is a
         // complete WebSocket frame (Beast, advanced_server_flex.cpp).
         ec == ssl::error::stream_truncated;
}

void fail(beast::error_code ec, const char* what, const std::string& peer) {
  if (normal_end(ec)) return;
  log::event("connection_error", {{"peer", peer}, {"during", what}, {"error", ec.message()}});
}

std::string json_body(const char* code, const std::string& message) {
  return nlohmann::json{{"code", code}, {"message", message}}.dump() + "\n";
}

template <class Body>
http::response<http::string_body> reply(const http::request<Body>& req, http::status status,
                                        std::string body, const char* type) {
  http::response<http::string_body> res{status, req.version()};
  res.set(http::field::server, "kithd");
  res.set(http::field::content_type, type);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

}  // namespace

class WsSession;

// The messages Server::deliver_together holds on its thread, per session, in delivery order.
struct HeldDeliveries {
  std::vector<std::pair<std::shared_ptr<WsSession>, std::vector<Encoded>>> sessions;
  std::unordered_map<const WsSession*, std::size_t> index;  // into `sessions`
  std::size_t messages = 0;

  void hold(std::shared_ptr<WsSession> session, Encoded message);
  void release();  // posts each session's messages to its strand, all in one handler
};
thread_local HeldDeliveries* held_deliveries = nullptr;

// What every session shares.
struct Shared {
  const Config& config;
  SyncService& service;
  Metrics& metrics;
  ssl::context& tls;
  sync::wire::Limits limits;
  std::atomic<bool> draining{false};

  std::mutex mu;
  std::map<AccountId, unsigned> per_account;
  std::map<const WsSession*, std::weak_ptr<WsSession>> sessions;
  std::condition_variable sessions_changed;

  Shared(const Config& c, SyncService& s, Metrics& m, ssl::context& t)
      : config(c), service(s), metrics(m), tls(t) {
    limits.max_message_bytes = c.max_message_bytes;
  }
};

// --- WebSocket sessions: the sync protocol --------------------------------------------------

class WsSession : public Peer, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(TlsStream&& stream, std::shared_ptr<Shared> shared,
            std::string peer)
      : ws_(std::move(stream)),
        shared_(std::move(shared)),
        peer_(std::move(peer)),
        kill_timer_(ws_.get_executor()),
        tokens_(shared_->config.request_burst),
        last_refill_(std::chrono::steady_clock::now()) {}

  ~WsSession() override {
    shared_->service.disconnected(*this);  // again if the read loop did; harmless
    std::lock_guard lock(shared_->mu);
    if (authenticated_) {
      if (--shared_->per_account[who_.account] == 0) shared_->per_account.erase(who_.account);
    }
    shared_->sessions.erase(this);
    shared_->metrics.connections_open -= 1;
    shared_->sessions_changed.notify_all();
  }

  void run(http::request<http::string_body> req) {
    shared_->metrics.connections_open += 1;
    {
      std::lock_guard lock(shared_->mu);
      shared_->sessions[this] = weak_from_this();
    }
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
    timeouts.idle_timeout = std::chrono::seconds(shared_->config.idle_timeout_s);
    timeouts.keep_alive_pings = true;
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "kithd"); }));
    ws_.read_message_max(shared_->config.max_message_bytes);
    ws_.binary(true);
    ws_.async_accept(req, beast::bind_front_handler(&WsSession::on_accept, shared_from_this()));
  }

  // Peer
  void deliver_encoded(Encoded message) override {
    if (held_deliveries != nullptr) {
      return held_deliveries->hold(shared_from_this(), std::move(message));
    }
    net::post(ws_.get_executor(), [self = shared_from_this(), message = std::move(message)] {
      self->enqueue(message);
    });
  }
  // On any thread: queues `messages` in order, in one turn of the strand.
  void deliver_all(std::vector<Encoded> messages) {
    net::post(ws_.get_executor(), [self = shared_from_this(), messages = std::move(messages)] {
      for (const Encoded& m : messages) self->enqueue(m);
    });
  }
  const Who& who() const noexcept override { return who_; }

  // SIGTERM: finish what is queued, then close with "going away".
  void go_away() {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      self->begin_close(websocket::close_code::going_away,
                        "SHUTTING_DOWN: the server is restarting; reconnect shortly");
    });
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) return fail(ec, "websocket accept", peer_);
    log::event("connection", {{"peer", peer_}});
    do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&WsSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) {
      if (ec == websocket::error::message_too_big) {
        shared_->metrics.rejected("TOO_LARGE");
        log::event("reject", {{"peer", peer_}, {"code", "TOO_LARGE"}});
      }
      closed_ = true;
      shared_->service.disconnected(*this);
      return fail(ec, "read", peer_);
    }
    std::string frame = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    if (closing_) return do_read();
    if (!ws_.got_binary()) {
      send_error(0, ErrorCode::MALFORMED,
                 "text frames are not part of the protocol; send each message as one binary "
                 "WebSocket frame");
    } else if (!take_token()) {
      // A client that ignores RATE_LIMITED for long (twice its burst, and at least 20 times
      // in a row) is cut off rather than answered forever.
      if (++strikes_ > std::max(20u, 2 * shared_->config.request_burst)) {
        reject_stats("RATE_LIMITED");
        return begin_close(websocket::close_code::policy_error,
                           "RATE_LIMITED: too many requests; slow down and reconnect");
      }
      auto err = sync::wire::make_error(peek_request_id(frame), ErrorCode::RATE_LIMITED,
                                        "too many requests on this connection; wait and retry");
      err.mutable_error()->set_retry_after_ms(retry_after_ms());
      reject_stats("RATE_LIMITED");
      send(err);
    } else {
      auto in = sync::wire::decode_client(crypto::as_bytes(frame), shared_->limits);
      if (!in) {
        send_error(peek_request_id(frame), sync::wire::wire_error_code(in.error().code),
                   in.error().message);
      } else {
        handle(in.value());
      }
    }
    if (shared_->draining && !closing_) {
      begin_close(websocket::close_code::going_away,
                  "SHUTTING_DOWN: the server is restarting; reconnect shortly");
    }
    do_read();
  }

  void handle(const kith::v1::ClientMessage& m) {
    const std::uint64_t rid = m.request_id();
    std::string plan;
    try {
      switch (m.body_case()) {
        case kith::v1::ClientMessage::kHello:
          return on_hello(rid, m.hello());
        case kith::v1::ClientMessage::kAuthenticate:
          return on_authenticate(rid, m.authenticate());
        case kith::v1::ClientMessage::kPing: {
          kith::v1::ServerMessage pong;
          pong.set_request_id(rid);
          pong.mutable_pong()->set_client_time_ms(m.ping().client_time_ms());
          pong.mutable_pong()->set_server_time_ms(now_ms());
          return send(pong);
        }
        default:
          break;
      }
      if (!authenticated_) {
        throw Refusal(ErrorCode::UNAUTHENTICATED,
                      "authenticate first: send Hello, then sign the Challenge");
      }
      auto self = shared_from_this();
      switch (m.body_case()) {
        case kith::v1::ClientMessage::kSubscribe:
          plan = m.subscribe().plan_id();
          catch_ups_.push_back(shared_->service.subscribe(self, rid, m.subscribe()));
          log::event("subscribe", {{"device", who_.device.short_hex()},
                                   {"plan", PlanId::from_bytes(crypto::as_bytes(plan)).short_hex()},
                                   {"cursor", m.subscribe().cursor()}});
          return pump();
        case kith::v1::ClientMessage::kUnsubscribe:
          shared_->service.unsubscribe(
              *this, PlanId::from_bytes(crypto::as_bytes(m.unsubscribe().plan_id())));
          return;
        case kith::v1::ClientMessage::kPushOps:
          plan = m.push_ops().plan_id();
          shared_->service.push_ops(self, rid, m.push_ops());
          log::event("push", {{"device", who_.device.short_hex()},
                              {"plan", PlanId::from_bytes(crypto::as_bytes(plan)).short_hex()},
                              {"ops", m.push_ops().ops_size()}});
          return;
        case kith::v1::ClientMessage::kPushMembership:
          plan = m.push_membership().plan_id();
          return shared_->service.push_membership(self, rid, m.push_membership());
        case kith::v1::ClientMessage::kPushEnvelopes:
          plan = m.push_envelopes().plan_id();
          return shared_->service.push_envelopes(self, rid, m.push_envelopes());
        case kith::v1::ClientMessage::kFetchLog:
          plan = m.fetch_log().plan_id();
          return send(shared_->service.fetch_log(*this, rid, m.fetch_log()));
        case kith::v1::ClientMessage::kListPlans: {
          auto list = shared_->service.list_plans(*this, rid, m.list_plans());
          log::event("list_plans", {{"device", who_.device.short_hex()},
                                    {"plans", list.plan_list().plans_size()}});
          return send(list);
        }
        case kith::v1::ClientMessage::kRedeemInvite:
          plan = m.redeem_invite().plan_id();
          for (auto& out : shared_->service.redeem_invite(*this, rid, m.redeem_invite())) {
            send(out);
          }
          return;
        default:
          throw Refusal(ErrorCode::MALFORMED, "unknown request");
      }
    } catch (const Refusal& r) {
      auto err = sync::wire::make_error(rid, r.code(), r.what());
      if (!r.op_id().empty()) err.mutable_error()->set_op_id(r.op_id());
      if (!plan.empty()) err.mutable_error()->set_plan_id(plan);
      reject_stats(kith::v1::ErrorCode_Name(r.code()), r.what());
      send(err);
    } catch (const StorageError& e) {
      log::event("storage_failed", {{"error", e.what()}});
      send_error(rid, ErrorCode::INTERNAL,
                 "the server could not read or write its database; nothing was stored, try again "
                 "later");
    } catch (const std::exception& e) {
      log::event("internal_error", {{"peer", peer_}, {"error", e.what()}});
      send_error(rid, ErrorCode::INTERNAL, "the server failed to handle the request; nothing of "
                                           "it was stored");
    }
  }

  void on_hello(std::uint64_t rid, const kith::v1::Hello& hello) {
    if (authenticated_) throw Refusal(ErrorCode::MALFORMED, "this connection is already authenticated");
    if (hello.protocol_version() != sync::wire::kProtocolVersion) {
      throw Refusal(ErrorCode::UNSUPPORTED_VERSION,
                    "protocol version " + std::to_string(hello.protocol_version()) +
                        " is not supported; this server speaks version 1");
    }
    std::optional<crypto::DeviceCertificate> cert;
    try {
      cert = crypto::DeviceCertificate::parse(crypto::as_bytes(hello.device_certificate()));
    } catch (const crypto::CryptoError&) {
      throw Refusal(ErrorCode::MALFORMED, "the device certificate does not parse");
    }
    if (!cert->verify()) {
      throw Refusal(ErrorCode::BAD_SIGNATURE,
                    "the device certificate is not signed by the identity key it names");
    }
    certificate_ = std::move(cert);
    crypto::random_fill(nonce_.data(), nonce_.size());
    kith::v1::ServerMessage ch;
    ch.set_request_id(rid);
    ch.mutable_challenge()->set_nonce(std::string(nonce_.begin(), nonce_.end()));
    ch.mutable_challenge()->set_server_time_ms(now_ms());
    send(ch);
  }

  void on_authenticate(std::uint64_t rid, const kith::v1::Authenticate& auth) {
    if (authenticated_) throw Refusal(ErrorCode::MALFORMED, "this connection is already authenticated");
    if (!certificate_) throw Refusal(ErrorCode::UNAUTHENTICATED, "send Hello before Authenticate");
    Bytes message(nonce_.begin(), nonce_.end());
    std::array<std::uint8_t, 32> binding{};
    if (SSL_export_keying_material(ws_.next_layer().native_handle(), binding.data(),
                                   binding.size(), kExporterLabel, sizeof kExporterLabel - 1,
                                   nullptr, 0, 0) != 1) {
      throw std::runtime_error("TLS exporter failed");
    }
    message.insert(message.end(), binding.begin(), binding.end());
    auto device_key = certificate_->device_signing().bytes();
    message.insert(message.end(), device_key.begin(), device_key.end());
    const bool ok = certificate_->device_signing().verify(
        crypto::labels::kAuthChallenge, message, crypto::as_bytes(auth.signature()));
    crypto::random_fill(nonce_.data(), nonce_.size());  // one answer per challenge
    if (!ok) {
      certificate_.reset();
      throw Refusal(ErrorCode::BAD_SIGNATURE,
                    "the challenge signature does not verify with the certified device key; "
                    "send Hello again");
    }
    Who w{AccountId::from_bytes(certificate_->identity().bytes()),
          DeviceId::from_bytes(certificate_->device_signing().bytes()),
          Bytes(certificate_->device_encryption().bytes().begin(),
                certificate_->device_encryption().bytes().end())};
    {
      std::lock_guard lock(shared_->mu);
      unsigned& n = shared_->per_account[w.account];
      if (n >= shared_->config.max_connections_per_account) {
        if (n == 0) shared_->per_account.erase(w.account);
        throw Refusal(ErrorCode::RATE_LIMITED,
                      "this account already has " + std::to_string(n) +
                          " connections open, the most allowed; close one and retry");
      }
      ++n;
    }
    who_ = w;
    authenticated_ = true;
    shared_->metrics.sessions_authenticated += 1;
    log::event("auth", {{"peer", peer_},
                        {"account", who_.account.short_hex()},
                        {"device", who_.device.short_hex()}});
    shared_->service.device_seen(who_, certificate_->serialize());
    kith::v1::ServerMessage ok_msg;
    ok_msg.set_request_id(rid);
    ok_msg.mutable_authenticated()->set_account_id(as_string(who_.account.bytes()));
    ok_msg.mutable_authenticated()->set_device_id(as_string(who_.device.bytes()));
    send(ok_msg);
  }

  bool take_token() {
    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - last_refill_).count();
    last_refill_ = now;
    tokens_ = std::min<double>(shared_->config.request_burst,
                               tokens_ + elapsed * shared_->config.requests_per_second);
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    strikes_ = 0;
    return true;
  }
  std::uint64_t retry_after_ms() const {
    return static_cast<std::uint64_t>((1 - tokens_) / shared_->config.requests_per_second * 1000) + 1;
  }

  void reject_stats(const std::string& code, const std::string& message = {}) {
    shared_->metrics.rejected(code);
    log::Fields f{{"peer", peer_}, {"code", code}};
    if (authenticated_) f["device"] = who_.device.short_hex();
    if (!message.empty()) f["message"] = message;
    log::event("reject", f);
  }

  void send_error(std::uint64_t rid, ErrorCode code, const std::string& message) {
    reject_stats(kith::v1::ErrorCode_Name(code), message);
    send(sync::wire::make_error(rid, code, message));
  }

  void send(const kith::v1::ServerMessage& m) { enqueue(encode(m)); }

  // On the strand.
  void enqueue(const Encoded& bytes) {
    if (closing_ || closed_) return;
    const std::size_t pending = queued_bytes_ + ws_.next_layer().gathered();
    if (pending + bytes->size() > shared_->config.max_pending_send_bytes) {
      return slow_reader();
    }
    queued_bytes_ += bytes->size();
    queue_.push_back(bytes);
    if (!writing_) do_write();
  }

  // Continues catch-ups while the queue is short, so a large catch-up never floods memory.
  void pump() {
    try {
      const std::size_t low = std::min(kLowWater, shared_->config.max_pending_send_bytes / 4);
      while (!catch_ups_.empty() && !closing_ && queued_bytes_ < low) {
        auto m = catch_ups_.front()->next();
        if (!m) {
          catch_ups_.pop_front();
          continue;
        }
        send(*m);
      }
    } catch (const StorageError& e) {
      log::event("storage_failed", {{"error", e.what()}});
      catch_ups_.pop_front();
      send_error(0, ErrorCode::INTERNAL, "the server could not read its database; subscribe again later");
    }
  }

  // Under load, acks and deliveries queue up faster than one write each can send them. A
  // message with another behind it is gathered (TlsStream::gather_writes) while what is
  // gathered fits one TLS record; the last one queued, or the one that fills the record, sends
  // them all. Nothing waits for more to arrive: an idle connection's single message goes at
  // once, and the order on the wire is the queue's.
  void do_write() {
    writing_ = true;
    TlsStream& tls = ws_.next_layer();
    const std::size_t frame = queue_.front()->size() + 14;  // a server frame's header is <= 10
    const bool gather = queue_.size() > 1 && !closing_ &&
                        tls.gathered() + frame + queue_[1]->size() + 14 <= kGatherBytes;
    tls.gather_writes(gather);
    if (!gather) shared_->metrics.send_flushes += 1;
    shared_->metrics.messages_sent += 1;
    ws_.async_write(net::buffer(*queue_.front()),
                    beast::bind_front_handler(&WsSession::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    ws_.next_layer().gather_writes(false);
    queued_bytes_ -= queue_.front()->size();
    queue_.pop_front();
    if (ec) {
      closed_ = true;
      return fail(ec, "write", peer_);
    }
    pump();
    if (!queue_.empty()) return do_write();
    if (closing_) do_close();
  }

  void slow_reader() {
    reject_stats("SLOW_READER");
    // Drop what is queued (not the frame being written); the Error and the close go next.
    while (queue_.size() > (writing_ ? 1u : 0u)) {
      queued_bytes_ -= queue_.back()->size();
      queue_.pop_back();
    }
    catch_ups_.clear();
    auto err = sync::wire::make_error(0, ErrorCode::SLOW_READER,
                                      "the connection did not read fast enough and is closed; "
                                      "reconnect and subscribe with your cursor");
    auto bytes = encode(err);
    queue_.push_back(bytes);
    queued_bytes_ += bytes->size();
    begin_close(websocket::close_code::policy_error, "SLOW_READER: the client did not read");
    if (!writing_) do_write();
  }

  // Flushes the queue, then sends a close frame. A peer that does not let the flush finish
  // within 5 s is cut off.
  void begin_close(websocket::close_code code, std::string reason) {
    if (closing_ || closed_) return;
    closing_ = true;
    catch_ups_.clear();
    close_reason_ = websocket::close_reason(code, reason);
    kill_timer_.expires_after(std::chrono::seconds(5));
    kill_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      beast::error_code ignored;
      beast::get_lowest_layer(self->ws_).close(ignored);
    });
    if (!writing_) do_close();
  }

  void do_close() {
    if (close_sent_) return;
    close_sent_ = true;
    ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code ec) {
      self->closed_ = true;
      self->kill_timer_.cancel();
      fail(ec, "close", self->peer_);
    });
  }

  websocket::stream<TlsStream> ws_;
  std::shared_ptr<Shared> shared_;
  std::string peer_;
  net::steady_timer kill_timer_;
  beast::flat_buffer buffer_;
  std::deque<Encoded> queue_;  // shared with the other receivers of a live batch
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closing_ = false;
  bool close_sent_ = false;
  bool closed_ = false;
  websocket::close_reason close_reason_;
  std::deque<std::unique_ptr<CatchUp>> catch_ups_;

  std::optional<crypto::DeviceCertificate> certificate_;
  std::array<std::uint8_t, 32> nonce_{};
  bool authenticated_ = false;
  Who who_;

  double tokens_;
  std::chrono::steady_clock::time_point last_refill_;
  unsigned strikes_ = 0;
};

void HeldDeliveries::hold(std::shared_ptr<WsSession> session, Encoded message) {
  auto [at, fresh] = index.try_emplace(session.get(), sessions.size());
  if (fresh) sessions.emplace_back(std::move(session), std::vector<Encoded>{});
  sessions[at->second].second.push_back(std::move(message));
  if (++messages >= kMaxHeldMessages) release();
}

void HeldDeliveries::release() {
  for (auto& [session, messages_of] : sessions) session->deliver_all(std::move(messages_of));
  sessions.clear();
  index.clear();
  messages = 0;
}

void Server::deliver_together(const std::function<void()>& run) {
  HeldDeliveries held;
  held_deliveries = &held;
  try {
    run();
  } catch (...) {
    held_deliveries = nullptr;
    held.release();
    throw;
  }
  held_deliveries = nullptr;
  held.release();
}

// --- HTTPS: TLS handshake, routing, /healthz and /metrics ------------------------------------

class HttpsSession : public std::enable_shared_from_this<HttpsSession> {
 public:
  HttpsSession(tcp::socket&& socket, std::shared_ptr<Shared> shared, std::string peer)
      : stream_(std::move(socket), shared->tls.native_handle()),
        deadline_(stream_.get_executor()),
        shared_(std::move(shared)),
        peer_(std::move(peer)) {}

  void run() {
    arm_deadline(std::chrono::milliseconds(shared_->config.tls_handshake_timeout_ms));
    stream_.async_handshake(
        beast::bind_front_handler(&HttpsSession::on_handshake, shared_from_this()));
  }

 private:
  // The TLS handshake and each HTTP request must finish in time, or the socket is closed.
  void arm_deadline(std::chrono::milliseconds after) {
    deadline_.expires_after(after);
    deadline_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) {
        beast::error_code ignored;
        self->stream_.next_layer().close(ignored);
      }
    });
  }

  void on_handshake(beast::error_code ec) {
    if (ec) {
      if (ec == net::error::operation_aborted) ec = beast::error::timeout;
      log::event("tls_failed", {{"peer", peer_}, {"error", ec.message()}});
      return;
    }
    do_read();
  }

  void do_read() {
    parser_.emplace();
    parser_->header_limit(8 * 1024);
    parser_->body_limit(8 * 1024);
    arm_deadline(std::chrono::milliseconds(shared_->config.tls_handshake_timeout_ms));
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpsSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return do_close();
    if (ec) return fail(ec, "http read", peer_);
    deadline_.cancel();
    http::request<http::string_body> req = parser_->release();
    const std::string target(req.target());
    const std::string path = target.substr(0, target.find('?'));
    if (websocket::is_upgrade(req)) {
      if (path == "/v1/sync" && !shared_->draining) {
        auto session = std::make_shared<WsSession>(std::move(stream_), shared_, peer_);
        return session->run(std::move(req));
      }
      if (shared_->draining) {
        return write(reply(req, http::status::service_unavailable,
                           json_body("SHUTTING_DOWN", "the server is stopping; reconnect shortly"),
                           "application/json"));
      }
      return write(reply(req, http::status::not_found,
                         json_body("NOT_FOUND", "no WebSocket endpoint at " + path +
                                                    "; the sync endpoint is /v1/sync"),
                         "application/json"));
    }
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      return write(reply(req, http::status::method_not_allowed,
                         json_body("METHOD_NOT_ALLOWED", "only GET is served"),
                         "application/json"));
    }
    if (path == "/healthz") {
      if (shared_->draining) {
        return write(reply(req, http::status::service_unavailable, "shutting down\n",
                           "text/plain"));
      }
      return write(reply(req, http::status::ok, "ok\n", "text/plain"));
    }
    if (path == "/metrics") {
      return write(reply(req, http::status::ok, shared_->metrics.render(),
                         "text/plain; version=0.0.4"));
    }
    if (path == "/v1/sync") {
      auto res = reply(req, http::status::upgrade_required,
                       json_body("WEBSOCKET_REQUIRED",
                                 "/v1/sync speaks WebSocket only; connect with a wss:// client"),
                       "application/json");
      res.set(http::field::upgrade, "websocket");
      return write(std::move(res));
    }
    write(reply(req, http::status::not_found,
                json_body("NOT_FOUND", "nothing at " + path +
                                           "; kithd serves /v1/sync, /healthz and /metrics"),
                "application/json"));
  }

  void write(http::response<http::string_body> res) {
    arm_deadline(std::chrono::milliseconds(shared_->config.tls_handshake_timeout_ms));
    auto sp = std::make_shared<http::response<http::string_body>>(std::move(res));
    http::async_write(stream_, *sp,
                      [self = shared_from_this(), sp](beast::error_code ec, std::size_t) {
                        if (ec) return fail(ec, "http write", self->peer_);
                        if (!sp->keep_alive()) return self->do_close();
                        self->do_read();
                      });
  }

  void do_close() {
    arm_deadline(std::chrono::seconds(5));
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) {});
  }

  TlsStream stream_;
  net::steady_timer deadline_;
  beast::flat_buffer buffer_;
  std::shared_ptr<Shared> shared_;
  std::string peer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

// --- Detecting TLS: a plain-text client gets a plain-text answer ------------------------------
// The first byte is peeked, not read, so that OpenSSL later reads the whole ClientHello from
// the socket itself (see tls_stream.hpp).

class DetectSession : public std::enable_shared_from_this<DetectSession> {
 public:
  DetectSession(tcp::socket&& socket, std::shared_ptr<Shared> shared)
      : socket_(std::move(socket)), deadline_(socket_.get_executor()), shared_(std::move(shared)) {
    beast::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    peer_ = ec ? "unknown" : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  void run() {
    net::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      self->shared_->metrics.connections_total += 1;
      self->deadline_.expires_after(
          std::chrono::milliseconds(self->shared_->config.tls_handshake_timeout_ms));
      self->deadline_.async_wait([weak = self->weak_from_this()](beast::error_code ec) {
        if (ec) return;
        if (auto s = weak.lock()) {
          beast::error_code ignored;
          s->socket_.close(ignored);
        }
      });
      self->socket_.async_wait(tcp::socket::wait_read,
                               beast::bind_front_handler(&DetectSession::on_readable, self));
    });
  }

 private:
  void on_readable(beast::error_code ec) {
    if (ec) return fail(ec == net::error::operation_aborted ? beast::error::timeout : ec,
                        "detect", peer_);
    std::uint8_t first = 0;
    const ssize_t n = ::recv(socket_.native_handle(), &first, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      return socket_.async_wait(
          tcp::socket::wait_read,
          beast::bind_front_handler(&DetectSession::on_readable, shared_from_this()));
    }
    if (n <= 0) return;  // closed before saying anything
    if (first == 0x16) {  // a TLS handshake record
      deadline_.cancel();
      std::shared_ptr<HttpsSession> https;
      try {
        https = std::make_shared<HttpsSession>(std::move(socket_), shared_, peer_);
      } catch (const std::exception& e) {
        return log::event("tls_failed", {{"peer", peer_}, {"error", e.what()}});
      }
      return https->run();
    }
    shared_->metrics.rejected("TLS_REQUIRED");
    log::event("reject", {{"peer", peer_}, {"code", "TLS_REQUIRED"}});
    res_.version(11);
    res_.result(http::status::bad_request);
    res_.set(http::field::server, "kithd");
    res_.set(http::field::content_type, "application/json");
    res_.set(http::field::connection, "close");
    res_.body() = json_body("TLS_REQUIRED",
                            "this port speaks TLS only; connect with https:// or wss://");
    res_.prepare_payload();
    http::async_write(socket_, res_, [self = shared_from_this()](beast::error_code, std::size_t) {
      beast::error_code ignored;
      self->deadline_.cancel();
      self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  tcp::socket socket_;
  net::steady_timer deadline_;
  std::shared_ptr<Shared> shared_;
  std::string peer_;
  http::response<http::string_body> res_;
};

// --- Listening and lifecycle ------------------------------------------------------------------

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, tcp::endpoint endpoint, std::shared_ptr<Shared> shared)
      : ioc_(ioc), acceptor_(net::make_strand(ioc)), shared_(std::move(shared)) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void run() { do_accept(); }
  void stop() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ignored;
      self->acceptor_.close(ignored);
    });
  }

 private:
  void do_accept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }
  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (ec) {
      log::event("accept_error", {{"error", ec.message()}});
    } else {
      std::make_shared<DetectSession>(std::move(socket), shared_)->run();
    }
    if (acceptor_.is_open()) do_accept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  std::shared_ptr<Shared> shared_;
};

struct Server::Impl {
  const Config& config;
  GroupCommitter& committer;
  net::io_context ioc;
  // Registered here, before main logs "listening", so a SIGTERM sent as soon as that line
  // appears waits for run() to drain rather than killing the process (asio keeps it pending).
  net::signal_set signals;
  ssl::context tls{ssl::context::tls_server};
  std::shared_ptr<Shared> shared;
  std::shared_ptr<Listener> listener;

  Impl(const Config& c, const CertFiles& files, SyncService& service, GroupCommitter& gc,
       Metrics& metrics)
      : config(c),
        committer(gc),
        ioc(static_cast<int>(c.threads)),
        signals(ioc, SIGINT, SIGTERM) {
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                    ssl::context::single_dh_use | SSL_OP_NO_RENEGOTIATION |
                    SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
    // TLS 1.2: forward-secret AEAD suites only (TLS 1.3's defaults are all modern).
    SSL_CTX_set_cipher_list(tls.native_handle(),
                            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                            "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                            "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
    // Idle connections keep no TLS buffers (DESIGN.md §3: memory per connection). TlsStream
    // gathers a write into a buffer its operation owns, and reports partial writes.
    SSL_CTX_set_mode(tls.native_handle(), SSL_MODE_RELEASE_BUFFERS |
                                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                              SSL_MODE_ENABLE_PARTIAL_WRITE);
    beast::error_code ec;
    tls.use_certificate_chain_file(files.cert.string(), ec);
    if (ec) {
      throw std::runtime_error("cannot load the TLS certificate " + files.cert.string() + ": " +
                               ec.message() + "; check --tls-cert");
    }
    tls.use_private_key_file(files.key.string(), ssl::context::pem, ec);
    if (ec || SSL_CTX_check_private_key(tls.native_handle()) != 1) {
      throw std::runtime_error("cannot load the TLS key " + files.key.string() +
                               " or it does not match the certificate; check --tls-key");
    }
    shared = std::make_shared<Shared>(c, service, metrics, tls);
    auto address = net::ip::make_address(c.listen_host, ec);
    if (ec) {
      throw std::runtime_error("--listen: `" + c.listen_host + "` is not an IP address");
    }
    try {
      listener = std::make_shared<Listener>(ioc, tcp::endpoint(address, c.listen_port), shared);
    } catch (const boost::system::system_error& e) {
      throw std::runtime_error("cannot listen on " + c.listen_host + ":" +
                               std::to_string(c.listen_port) + ": " + e.code().message() +
                               " (is another kithd running? pick another --listen port)");
    }
  }
};

Server::Server(const Config& config, const CertFiles& tls, SyncService& service,
               GroupCommitter& committer, Metrics& metrics)
    : impl_(std::make_unique<Impl>(config, tls, service, committer, metrics)) {}

Server::~Server() = default;

std::uint16_t Server::port() const noexcept { return impl_->listener->port(); }

void Server::run() {
  Impl& s = *impl_;
  std::promise<int> stop;
  auto stopped = stop.get_future();
  s.signals.async_wait([&stop](beast::error_code ec, int sig) {
    if (!ec) stop.set_value(sig);
  });
  s.listener->run();
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < s.config.threads; ++i) threads.emplace_back([&s] { s.ioc.run(); });

  const int sig = stopped.get();
  log::event("shutdown", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}, {"phase", "draining"}});
  s.shared->draining = true;
  s.listener->stop();

  // Every commit already queued finishes and queues its ack before sessions are closed.
  // The acks this transaction's earlier dones delivered are held (deliver_together) until
  // the dones end: they are handed to their sessions first, so that they are queued before the
  // sessions' going-away close below.
  std::promise<void> flushed;
  s.committer.submit(WriteBatch{}, [&flushed](const StorageError*) {
    if (held_deliveries != nullptr) held_deliveries->release();
    flushed.set_value();
  });
  flushed.get_future().wait();

  std::vector<std::shared_ptr<WsSession>> open;
  {
    std::lock_guard lock(s.shared->mu);
    for (auto& [key, weak] : s.shared->sessions) {
      if (auto session = weak.lock()) open.push_back(std::move(session));
    }
  }
  for (auto& session : open) session->go_away();
  open.clear();
  {
    std::unique_lock lock(s.shared->mu);
    s.shared->sessions_changed.wait_for(lock,
                                        std::chrono::milliseconds(s.config.drain_timeout_ms),
                                        [&] { return s.shared->sessions.empty(); });
  }
  s.ioc.stop();
  for (auto& t : threads) t.join();
  log::event("shutdown", {{"phase", "stopped"}});
}

}  // namespace kith::server
