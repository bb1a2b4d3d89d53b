// TlsStream: a server-side TLS stream that drives OpenSSL directly on the TCP socket's file
// descriptor (SSL_set_fd on a non-blocking socket), for Beast's HTTP and WebSocket code.
//
// Why not asio::ssl::stream: it keeps four 17 KiB buffers per connection for its whole life (its
// own input and output vectors and a BIO pair of two more), about 68 KiB of the ~76 KiB an idle
// connection costs. A phone keeps its connection open all day, so idle connections are what a
// server mostly holds. Here OpenSSL reads and writes the socket itself, and with
// SSL_MODE_RELEASE_BUFFERS (set on the context by net_server.cpp) it frees its record buffers
// whenever they are empty: an idle connection keeps only OpenSSL's session state.
//
// How it works: each operation calls the OpenSSL function (SSL_do_handshake, SSL_read_ex,
// SSL_write_ex, SSL_shutdown); when OpenSSL says it wants to read or write the socket, the op
// waits for the socket to become readable or writable (socket::async_wait) and calls it again.
// Nothing completes inside the initiating call: a result known at once is posted.
//
// Write gathering: under load a session has several small messages queued (acks, deliveries),
// and one TLS record and one write(2) each would cost a syscall, a record's header and tag, and
// an AEAD call per message. While gather_writes(true) is set, a write only appends its bytes to
// the stream's outbound buffer and completes; the next write made with gathering off appends its
// own bytes too and sends everything in as few records (16 KiB each) and write(2)s as OpenSSL
// allows. The bytes go out in the order they were written, whoever wrote them: Beast's own
// control frames (pong, close) written meanwhile are gathered behind the messages before them.
// Beast's WebSocket write lock covers every write and the teardown, so no two of them overlap.
//
// Rules: one read and one write may be outstanding at once (Beast's WebSocket does that), from
// one strand; the socket's executor must be that strand, since OpenSSL's SSL object is not
// thread-safe. Closing the socket (a deadline, Beast's timeouts) aborts every pending op with
// operation_aborted. Included by net_server.cpp only: Beast is compiled in one translation unit.
#pragma once

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <cerrno>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

namespace kith::server {

namespace tls_detail {

namespace net = boost::asio;
using error_code = boost::system::error_code;

// What one call of an OpenSSL function came to.
struct Step {
  enum class Want { kNothing, kRead, kWrite } want = Want::kNothing;
  error_code ec;
  std::size_t bytes = 0;
  bool broken = false;  // a fatal error: the connection may not send close_notify any more
};

// Classifies a failed OpenSSL call. Runs right after the call, on the same thread, so that
// OpenSSL's error queue and errno are the call's own.
inline Step failed(SSL* ssl, int ret) {
  const int saved_errno = errno;
  Step s;
  switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ:
      s.want = Step::Want::kRead;
      return s;
    case SSL_ERROR_WANT_WRITE:
      s.want = Step::Want::kWrite;
      return s;
    case SSL_ERROR_ZERO_RETURN:  // the peer sent close_notify
      s.ec = net::error::eof;
      return s;
    case SSL_ERROR_SYSCALL: {
      s.broken = true;
      const unsigned long e = ERR_get_error();
      if (e != 0) {
        s.ec = error_code(static_cast<int>(e), net::error::get_ssl_category());
      } else if (saved_errno != 0) {
        s.ec = error_code(saved_errno, boost::system::system_category());
      } else {
        s.ec = net::ssl::error::stream_truncated;  // EOF without close_notify
      }
      return s;
    }
    default: {  // SSL_ERROR_SSL: a protocol error
      s.broken = true;
      const unsigned long e = ERR_get_error();
      // OpenSSL 3 reports a peer that closes without close_notify this way; asio's
      // ssl::stream maps it to stream_truncated too.
      if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        s.ec = net::ssl::error::stream_truncated;
      } else {
        s.ec = error_code(static_cast<int>(e), net::error::get_ssl_category());
      }
      return s;
    }
  }
}

}  // namespace tls_detail

class TlsStream {
 public:
  using socket_type = boost::asio::ip::tcp::socket;
  using executor_type = socket_type::executor_type;
  using next_layer_type = socket_type;  // so that beast::get_lowest_layer finds the socket
  using error_code = boost::system::error_code;

  // Takes the accepted socket; `ctx` must outlive the stream. Throws std::runtime_error if
  // OpenSSL cannot make the SSL object (out of memory).
  TlsStream(socket_type&& socket, SSL_CTX* ctx) : socket_(std::move(socket)) {
    ssl_ = SSL_new(ctx);
    if (ssl_ == nullptr) throw std::runtime_error("SSL_new failed");
    error_code ec;
    socket_.non_blocking(true, ec);
    if (ec || SSL_set_fd(ssl_, static_cast<int>(socket_.native_handle())) != 1) {
      SSL_free(ssl_);
      throw std::runtime_error("cannot attach TLS to the socket");
    }
    SSL_set_accept_state(ssl_);
  }
  TlsStream(TlsStream&& other) noexcept
      : socket_(std::move(other.socket_)),
        ssl_(std::exchange(other.ssl_, nullptr)),
        broken_(other.broken_),
        gathering_(other.gathering_),
        out_(std::move(other.out_)) {}
  TlsStream& operator=(TlsStream&&) = delete;
  TlsStream(const TlsStream&) = delete;
  ~TlsStream() {
    if (ssl_ != nullptr) SSL_free(ssl_);
  }

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  socket_type& next_layer() noexcept { return socket_; }
  SSL* native_handle() noexcept { return ssl_; }

  // The TLS handshake, as the server. Completion: void(error_code).
  template <class Token>
  auto async_handshake(Token&& token) {
    return run<false>([](SSL* ssl) {
      tls_detail::Step s;
      ERR_clear_error();
      const int r = SSL_do_handshake(ssl);
      return r == 1 ? s : tls_detail::failed(ssl, r);
    }, std::forward<Token>(token));
  }

  // Reads into the first non-empty buffer. Completion: void(error_code, std::size_t).
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    boost::asio::mutable_buffer into;
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      if (boost::asio::mutable_buffer(*it).size() > 0) {
        into = *it;
        break;
      }
    }
    return run<true>([into](SSL* ssl) {
      tls_detail::Step s;
      if (into.size() == 0) return s;
      ERR_clear_error();
      const int r = SSL_read_ex(ssl, into.data(), into.size(), &s.bytes);
      return r == 1 ? s : tls_detail::failed(ssl, r);
    }, std::forward<Token>(token));
  }

  // While on, writes are gathered (see the top of this file). The caller turns it off for the
  // write that should send what was gathered; nothing is sent before that write.
  void gather_writes(bool on) noexcept { gathering_ = on; }
  // Bytes gathered and not yet sent.
  std::size_t gathered() const noexcept { return out_.size(); }

  // Gathering: appends every byte and completes. Otherwise, with nothing gathered: writes up to
  // one TLS record, several buffers (a WebSocket frame header and its payload) gathered into one
  // record rather than sent as a record each. With bytes gathered: appends, then sends them all
  // and completes with the size of `buffers`. Completion: void(error_code, std::size_t).
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    const std::size_t total = boost::asio::buffer_size(buffers);
    if (gathering_ || !out_.empty()) {
      const std::size_t at = out_.size();
      out_.resize(at + total);
      boost::asio::buffer_copy(boost::asio::buffer(out_.data() + at, total), buffers);
      if (gathering_) {
        return run<true>(
            [total](SSL*) {
              return tls_detail::Step{{}, {}, total, false};
            },
            std::forward<Token>(token));
      }
      return run<true>(
          [this, total, sent = std::size_t{0}](SSL* ssl) mutable {
            tls_detail::Step s;
            while (sent < out_.size()) {
              std::size_t n = 0;
              ERR_clear_error();
              // The buffer may have moved since a retry began (SSL_MODE_ACCEPT_MOVING_WRITE_
              // BUFFER); its bytes from `sent` on have not.
              const int r = SSL_write_ex(ssl, out_.data() + sent, out_.size() - sent, &n);
              if (r != 1) {
                s = tls_detail::failed(ssl, r);
                if (s.want == tls_detail::Step::Want::kNothing) release_out();
                return s;
              }
              sent += n;
            }
            release_out();
            s.bytes = total;
            return s;
          },
          std::forward<Token>(token));
    }
    constexpr std::size_t kRecord = 16 * 1024;
    boost::asio::const_buffer first;
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      if (boost::asio::const_buffer(*it).size() > 0) {
        first = *it;
        break;
      }
    }
    std::vector<std::uint8_t> gathered;  // lives in the op, freed when it completes
    if (first.size() < std::min(total, kRecord)) {
      gathered.resize(std::min(total, kRecord));
      boost::asio::buffer_copy(boost::asio::buffer(gathered), buffers);
    }
    return run<true>(
        [first, gathered = std::move(gathered)](SSL* ssl) {
          tls_detail::Step s;
          const void* data = gathered.empty() ? first.data() : gathered.data();
          const std::size_t size = gathered.empty() ? first.size() : gathered.size();
          if (size == 0) return s;
          ERR_clear_error();
          const int r = SSL_write_ex(ssl, data, size, &s.bytes);
          return r == 1 ? s : tls_detail::failed(ssl, r);
        },
        std::forward<Token>(token));
  }

  // Ends the connection gracefully: sends close_notify (without waiting for the peer's), shuts
  // down the sending side, then reads and discards until the peer closes too, and closes the
  // socket. Closing a socket with unread data makes the kernel send a reset, and a reset can
  // destroy what was just sent (a WebSocket close frame) before the peer reads it; Beast's
  // teardown of a plain socket drains the same way. The caller bounds the wait with a deadline
  // that closes the socket. Completion: void(error_code).
  template <class Token>
  auto async_shutdown(Token&& token) {
    enum class Phase { kStart, kCloseNotify, kDrain };
    return boost::asio::async_compose<Token, void(error_code)>(
        [this, phase = Phase::kStart](auto& self, error_code ec = {}) mutable {
          if (phase == Phase::kStart) {  // never complete inside the initiating call
            release_out();               // gathered and never sent: the connection is ending
            phase = Phase::kCloseNotify;
            return boost::asio::post(get_executor(), std::move(self));
          }
          if (ec) {
            close_socket();
            return self.complete(error_code{});
          }
          if (phase == Phase::kCloseNotify) {
            if (!broken_ && ssl_ != nullptr) {
              ERR_clear_error();
              const int r = SSL_shutdown(ssl_);
              if (r < 0) {
                auto s = tls_detail::failed(ssl_, r);
                if (s.want == tls_detail::Step::Want::kWrite) {
                  return socket_.async_wait(socket_type::wait_write, std::move(self));
                }
                broken_ = true;
              }
            }
            error_code ignored;
            socket_.shutdown(socket_type::shutdown_send, ignored);
            phase = Phase::kDrain;
          }
          std::array<std::uint8_t, 4096> discard;
          for (;;) {
            const ssize_t n = ::recv(socket_.native_handle(), discard.data(), discard.size(),
                                     MSG_DONTWAIT);
            if (n > 0) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
              return socket_.async_wait(socket_type::wait_read, std::move(self));
            }
            break;  // the peer closed, or the connection failed
          }
          close_socket();
          self.complete(error_code{});
        },
        token, socket_);
  }

  // The same, at once, without waiting for the socket (Beast's synchronous teardown).
  void shutdown_now() {
    release_out();
    if (!broken_ && ssl_ != nullptr) {
      ERR_clear_error();
      SSL_shutdown(ssl_);
    }
    close_socket();
  }

 private:
  void close_socket() {
    error_code ignored;
    socket_.close(ignored);
  }

  // An idle connection keeps no outbound buffer (see the top of this file).
  void release_out() noexcept {
    gathering_ = false;
    std::vector<std::uint8_t>().swap(out_);
  }

  // Calls `attempt` until it needs nothing more from the socket, then completes with its
  // result: void(error_code, std::size_t) if kBytes, else void(error_code).
  template <bool kBytes, class Attempt, class Token>
  auto run(Attempt attempt, Token&& token) {
    using Signature =
        std::conditional_t<kBytes, void(error_code, std::size_t), void(error_code)>;
    return boost::asio::async_compose<Token, Signature>(
        Op<Attempt, kBytes>{this, std::move(attempt), false, std::nullopt}, token, socket_);
  }

  template <class Attempt, bool kBytes>
  struct Op {
    TlsStream* stream;
    Attempt attempt;
    bool started = false;
    std::optional<tls_detail::Step> ready;  // a result found inside the initiating call

    template <class Self>
    void operator()(Self& self, error_code ec = {}) {
      if (ready) return finish(self, *ready);
      if (ec) return finish(self, tls_detail::Step{{}, ec, 0, false});
      if (stream->ssl_ == nullptr) {
        return finish(self, tls_detail::Step{{}, boost::asio::error::bad_descriptor, 0, true});
      }
      const bool first = !started;
      started = true;
      tls_detail::Step s = attempt(stream->ssl_);
      switch (s.want) {
        case tls_detail::Step::Want::kRead:
          return stream->socket_.async_wait(socket_type::wait_read, std::move(self));
        case tls_detail::Step::Want::kWrite:
          return stream->socket_.async_wait(socket_type::wait_write, std::move(self));
        case tls_detail::Step::Want::kNothing:
          break;
      }
      if (s.broken) stream->broken_ = true;
      if (first) {  // never complete inside the initiating call
        ready = s;
        return boost::asio::post(stream->get_executor(), std::move(self));
      }
      finish(self, s);
    }

    template <class Self>
    static void finish(Self& self, const tls_detail::Step& s) {
      if constexpr (kBytes) {
        self.complete(s.ec, s.bytes);
      } else {
        self.complete(s.ec);
      }
    }
  };

  socket_type socket_;
  SSL* ssl_ = nullptr;
  bool broken_ = false;
  bool gathering_ = false;
  std::vector<std::uint8_t> out_;  // gathered, not yet sent
};

// Beast's WebSocket close ends with a teardown of the next layer, found by argument-dependent
// lookup: close_notify, then close the socket.
inline void teardown(boost::beast::role_type, TlsStream& stream, boost::system::error_code& ec) {
  ec = {};
  stream.shutdown_now();
}

template <class TeardownHandler>
void async_teardown(boost::beast::role_type, TlsStream& stream, TeardownHandler&& handler) {
  stream.async_shutdown(std::forward<TeardownHandler>(handler));
}

}  // namespace kith::server
