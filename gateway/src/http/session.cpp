#include "http/session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <algorithm>
#include <string_view>

#include "common/ids.hpp"
#include "common/log.hpp"
#include "http/tls_context.hpp"

namespace gw::http::detail {
namespace {

constexpr std::size_t kFirstReadChunk = 16 * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// Waiting for the client's close_notify is a courtesy; do not let it hold a connection long.
constexpr std::chrono::milliseconds kShutdownTimeout{2000};
// After an error answered mid-request (413, 400, ...), how long we read and discard what the
// client still sends, so that closing does not reset the connection before it read our answer.
constexpr std::chrono::milliseconds kLingerTime{5000};

bool isPeerClose(const beast::error_code& ec) {
  // stream_truncated: the peer closed TCP without a TLS close_notify. Common and harmless for
  // HTTP, whose messages carry their own length (same reasoning as Beast's examples).
  return ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == ssl::error::stream_truncated ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe;
}

bool isHttpParseError(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category();
}

bool headerTextIsSafe(std::string_view text) { return text.find_first_of("\r\n") == std::string_view::npos; }

// Framing headers belong to the server: a handler setting them could desynchronize the stream.
bool isFramingHeader(std::string_view name) {
  return beast::iequals(name, "Content-Length") || beast::iequals(name, "Transfer-Encoding") ||
         beast::iequals(name, "Connection");
}

/// Holds the session while a handler works, makes Respond run once, and answers 500 if the
/// handler lets every copy of Respond go without calling it. Until Respond is called, its work
/// guard keeps the io threads running (stop() waits for in-flight handlers within its grace).
class ResponseSlot {
 public:
  ResponseSlot(std::shared_ptr<Session> session, std::string request_id, net::io_context& ioc)
      : session_(std::move(session)), request_id_(std::move(request_id)), work_(ioc.get_executor()) {}
  ~ResponseSlot() {
    if (!used_.exchange(true)) {
      GW_LOG(Error, Http, "handler_dropped_response").kv("request_id", request_id_);
      session_->deliver(errorResponse(makeError(ErrorCode::Internal, "the request was not answered", "",
                                                "retry; if it happens again, report the X-Request-Id")));
    }
  }
  ResponseSlot(const ResponseSlot&) = delete;
  ResponseSlot& operator=(const ResponseSlot&) = delete;

  void respond(Response response) {
    if (used_.exchange(true)) {
      GW_LOG(Error, Http, "respond_called_twice").kv("request_id", request_id_);
      return;
    }
    session_->deliver(std::move(response));
    work_.reset();  // the handler is done even if copies of Respond live on
  }

 private:
  std::shared_ptr<Session> session_;
  std::string request_id_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::atomic<bool> used_{false};
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Core

Core::Core(ServerOptions options_in, std::shared_ptr<const Router> router_in, ssl::context tls_in)
    : options(std::move(options_in)),
      router(std::move(router_in)),
      ioc(std::max(1, options.threads)),
      tls(std::move(tls_in)) {}

std::vector<std::shared_ptr<Session>> Core::liveSessions() {
  std::vector<std::shared_ptr<Session>> out;
  std::lock_guard lock(sessions_mutex);
  out.reserve(sessions.size());
  for (auto& [key, weak] : sessions) {
    if (auto session = weak.lock()) out.push_back(std::move(session));
  }
  return out;
}

void Core::runThread() {
  for (;;) {
    try {
      ioc.run();
      break;
    } catch (const std::exception&) {
      // A handler threw through Asio. The message may quote request data, so it is not logged.
      GW_LOG(Error, Http, "io_thread_exception");
    }
  }
  std::lock_guard lock(run_mutex);
  --running;
  run_cv.notify_all();
}

// ---------------------------------------------------------------------------------------------
// Listener

Listener::Listener(std::shared_ptr<Core> core)
    : core_(std::move(core)), acceptor_(net::make_strand(core_->ioc)), retry_timer_(acceptor_.get_executor()) {}

Status Listener::open() {
  const ServerOptions& o = core_->options;
  beast::error_code ec;
  const auto address = net::ip::make_address(o.address, ec);
  if (ec) {
    return makeError(ErrorCode::Config, "not an IP address: " + o.address, "address",
                     "use a literal IPv4 or IPv6 address such as 0.0.0.0 or 127.0.0.1");
  }
  const tcp::endpoint endpoint(address, o.port);
  const std::string where = o.address + ":" + std::to_string(o.port);
  auto fail = [&](std::string_view step) -> Error {
    return makeError(ErrorCode::Config, "cannot " + std::string(step) + ": " + ec.message(), where,
                     ec == net::error::address_in_use ? "another process is using this port; stop it or choose another port"
                                                      : "check the listen address and port");
  };
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) return fail("open a socket");
  // SO_REUSEADDR lets a restart bind while old connections sit in TIME_WAIT; on Linux it still
  // refuses a port another socket is listening on.
  acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (ec) return fail("set SO_REUSEADDR");
  acceptor_.bind(endpoint, ec);
  if (ec) return fail("bind");
  acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen");
  port_ = acceptor_.local_endpoint(ec).port();
  return ok();
}

void Listener::run() {
  net::dispatch(acceptor_.get_executor(), beast::bind_front_handler(&Listener::doAccept, shared_from_this()));
}

void Listener::close() {
  net::post(acceptor_.get_executor(), [self = shared_from_this()] {
    beast::error_code ignored;
    self->acceptor_.close(ignored);
    self->retry_timer_.cancel();
  });
}

void Listener::doAccept() {
  if (!acceptor_.is_open()) return;
  // Each connection gets its own strand: its handlers never run concurrently.
  acceptor_.async_accept(net::make_strand(core_->ioc), beast::bind_front_handler(&Listener::onAccept, shared_from_this()));
}

void Listener::onAccept(beast::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor_.is_open() || core_->stopping) return;
  if (ec) {
    // E.g. EMFILE: back off briefly instead of spinning on a failing accept.
    GW_LOG(Warn, Http, "accept_failed").kv("reason", ec.message());
    retry_timer_.expires_after(std::chrono::milliseconds(100));
    retry_timer_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
      if (!wait_ec) self->doAccept();
    });
    return;
  }
  beast::error_code ignored;
  const auto peer = socket.remote_endpoint(ignored);
  std::string remote = peer.address().to_string() + ":" + std::to_string(peer.port());
  if (core_->connections.fetch_add(1) >= core_->options.max_connections) {
    core_->connections.fetch_sub(1);
    GW_LOG(Warn, Http, "connection_limit").kv("remote", remote).kv("max_connections", core_->options.max_connections);
    socket.close(ignored);
  } else {
    socket.set_option(tcp::no_delay(true), ignored);  // small responses: do not wait for Nagle
    std::make_shared<Session>(core_, std::move(socket), std::move(remote))->run();
  }
  doAccept();
}

// ---------------------------------------------------------------------------------------------
// Session

Session::Session(std::shared_ptr<Core> core, tcp::socket&& socket, std::string remote)
    : core_(std::move(core)), stream_(std::move(socket), core_->tls), remote_(std::move(remote)) {}

Session::~Session() {
  {
    std::lock_guard lock(core_->sessions_mutex);
    core_->sessions.erase(this);
  }
  core_->connections.fetch_sub(1);
}

void Session::run() {
  {
    std::lock_guard lock(core_->sessions_mutex);
    core_->sessions.emplace(this, weak_from_this());
  }
  net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::onRun, shared_from_this()));
}

void Session::onRun() {
  if (core_->stopping) return closeSocket();
  beast::get_lowest_layer(stream_).expires_after(core_->options.read_timeout);
  stream_.async_handshake(ssl::stream_base::server, beast::bind_front_handler(&Session::onHandshake, shared_from_this()));
}

void Session::onHandshake(beast::error_code ec) {
  if (ec) {
    if (ec != net::error::operation_aborted && !core_->stopping) {
      // Reason and verification error only: certificate contents stay out of the log.
      const std::string verify_error = verifyFailure(stream_.native_handle());
      if (verify_error.empty()) {
        GW_LOG(Warn, Http, "tls_handshake_failed").kv("remote", remote_).kv("reason", ec.message());
      } else {
        GW_LOG(Warn, Http, "tls_handshake_failed")
            .kv("remote", remote_)
            .kv("reason", ec.message())
            .kv("verify_error", verify_error);
      }
    }
    state_ = State::Closed;
    closeSocket();
    return;
  }
  identity_ = peerIdentity(stream_.native_handle());
  waitForRequest();
}

void Session::waitForRequest() {
  if (core_->stopping) return closeGracefully();
  state_ = State::Idle;
  if (buffer_.size() > 0) return readHeader();  // a pipelined request is already buffered
  // Keep-alive wait: the idle timeout runs until the next request's first byte arrives; from
  // there the read timeout bounds the whole request (so a half-sent request cannot hold us).
  beast::get_lowest_layer(stream_).expires_after(first_request_ ? core_->options.read_timeout : core_->options.idle_timeout);
  stream_.async_read_some(buffer_.prepare(kFirstReadChunk),
                          beast::bind_front_handler(&Session::onFirstBytes, shared_from_this()));
}

void Session::onFirstBytes(beast::error_code ec, std::size_t bytes) {
  if (ec) {
    state_ = State::Closed;
    if (ec == beast::error::timeout) {
      GW_LOG(Debug, Http, "idle_timeout").kv("remote", remote_);
    }
    closeSocket();
    return;
  }
  buffer_.commit(bytes);
  readHeader();
}

void Session::readHeader() {
  state_ = State::Reading;
  request_started_ = std::chrono::steady_clock::now();
  read_deadline_ = request_started_ + core_->options.read_timeout;
  request_ = Request{};
  parser_.emplace();
  parser_->body_limit(core_->options.max_body_bytes);
  parser_->header_limit(static_cast<std::uint32_t>(core_->options.max_header_bytes));
  beast::get_lowest_layer(stream_).expires_at(read_deadline_);
  bhttp::async_read_header(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::onHeader, shared_from_this()));
}

void Session::onHeader(beast::error_code ec, std::size_t) {
  if (ec) return onReadError(ec);
  auto& message = parser_->get();
  request_.method = std::string(message.method_string());
  if (message.version() != 11) {
    return failRequest(
        makeError(ErrorCode::InvalidInput, "only HTTP/1.1 is supported", "request line", "send HTTP/1.1 requests"), 505);
  }
  if (parser_->is_done()) return handleRequest();
  if (beast::iequals(message[bhttp::field::expect], "100-continue")) {
    // The body limit was already checked against Content-Length, so the client may send.
    beast::get_lowest_layer(stream_).expires_after(core_->options.write_timeout);
    net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                     beast::bind_front_handler(&Session::onContinueSent, shared_from_this()));
    return;
  }
  readBody();
}

void Session::onContinueSent(beast::error_code ec, std::size_t) {
  if (ec) {
    state_ = State::Closed;
    return closeSocket();
  }
  readBody();
}

void Session::readBody() {
  beast::get_lowest_layer(stream_).expires_at(read_deadline_);
  bhttp::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::onBody, shared_from_this()));
}

void Session::onBody(beast::error_code ec, std::size_t) {
  if (ec) return onReadError(ec);
  handleRequest();
}

void Session::onReadError(beast::error_code ec) {
  if (ec == bhttp::error::body_limit) {
    return failRequest(makeError(ErrorCode::PayloadTooLarge,
                                 "the request body is larger than " + std::to_string(core_->options.max_body_bytes) +
                                     " bytes",
                                 "request body", "split the upload into smaller batches"),
                       413);
  }
  if (ec == bhttp::error::header_limit) {
    return failRequest(makeError(ErrorCode::InvalidInput,
                                 "the request line and headers are larger than " +
                                     std::to_string(core_->options.max_header_bytes) + " bytes",
                                 "request headers", "send fewer or shorter headers"),
                       431);
  }
  if (isHttpParseError(ec) && !isPeerClose(ec) && ec != bhttp::error::partial_message) {
    return failRequest(makeError(ErrorCode::InvalidInput, "malformed HTTP request: " + ec.message(), "request",
                                 "send a well-formed HTTP/1.1 request"),
                       400);
  }
  state_ = State::Closed;
  if (ec == beast::error::timeout) {
    // Bytes arrived but the request did not complete in time (slow or stalled client).
    GW_LOG(Info, Http, "read_timeout").kv("remote", remote_);
  } else if (!isPeerClose(ec) && ec != net::error::operation_aborted && ec != bhttp::error::partial_message) {
    GW_LOG(Debug, Http, "read_failed").kv("remote", remote_).kv("reason", ec.message());
  }
  closeSocket();
}

Respond Session::makeRespond() {
  auto slot = std::make_shared<ResponseSlot>(shared_from_this(), request_.request_id, core_->ioc);
  return [slot](Response response) { slot->respond(std::move(response)); };
}

void Session::handleRequest() {
  auto& message = parser_->get();
  keep_alive_ = message.keep_alive();
  request_.request_id = ids::randomHex(16);
  request_.remote = remote_;
  request_.client = identity_;
  const auto parsed = parseTarget(message.target(), request_);
  request_.headers.reserve(static_cast<std::size_t>(std::distance(message.begin(), message.end())));
  for (const auto& field : message) {
    request_.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  request_bytes_ = message.body().size();
  request_.body = std::move(message.body());
  parser_.reset();
  state_ = State::Handling;

  if (core_->stopping) {
    return failRequest(makeError(ErrorCode::Unavailable, "the gateway is shutting down", "", "retry shortly"), 503);
  }
  if (!parsed) return onResponse(errorResponse(parsed.error(), 400));

  Respond respond = makeRespond();
  try {
    core_->router->dispatch(request_, respond);
  } catch (const std::exception&) {
    // what() may quote request content, so only the fact is logged.
    GW_LOG(Error, Http, "handler_exception").kv("request_id", request_.request_id).kv("route", request_.route);
    respond(errorResponse(makeError(ErrorCode::Internal, "the request failed unexpectedly", "",
                                    "retry; if it happens again, report the X-Request-Id")));
  }
}

void Session::failRequest(const Error& error, int status) {
  if (request_.request_id.empty()) request_.request_id = ids::randomHex(16);
  parser_.reset();
  close_after_response_ = true;  // the stream may hold the rest of a message we did not read
  linger_after_response_ = true;
  state_ = State::Handling;
  onResponse(errorResponse(error, status));
}

void Session::deliver(Response response) {
  std::shared_lock lock(core_->post_mutex);
  if (!core_->accepting_posts) return;  // stop() finished: nobody would run the handler
  net::post(stream_.get_executor(),
            [self = shared_from_this(), r = std::move(response)]() mutable { self->onResponse(std::move(r)); });
}

void Session::onResponse(Response r) {
  if (state_ != State::Handling) return;
  if (!beast::get_lowest_layer(stream_).socket().is_open()) {
    state_ = State::Closed;
    return;
  }
  state_ = State::Writing;
  if (r.status < 200 || r.status > 599) {  // 1xx are interim, not answers
    GW_LOG(Error, Http, "handler_bad_status").kv("request_id", request_.request_id).kv("status", r.status);
    r = errorResponse(makeError(ErrorCode::Internal, "the request failed unexpectedly", "",
                                "retry; if it happens again, report the X-Request-Id"));
  }
  auto& res = response_.emplace();
  res.version(11);
  res.result(static_cast<unsigned>(r.status));
  for (const auto& [name, value] : r.headers) {
    if (name.empty() || !headerTextIsSafe(name) || !headerTextIsSafe(value) || isFramingHeader(name)) {
      GW_LOG(Error, Http, "handler_bad_header").kv("request_id", request_.request_id);
      continue;
    }
    res.set(name, value);
  }
  // Set after the handler's headers so these cannot be overridden.
  res.set(bhttp::field::content_type, headerTextIsSafe(r.content_type) ? r.content_type : "application/octet-stream");
  res.set(bhttp::field::cache_control, "no-store");
  res.set(bhttp::field::strict_transport_security, "max-age=31536000");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Request-Id", request_.request_id);
  res.keep_alive(keep_alive_ && !close_after_response_ && !core_->stopping);
  res.body() = std::move(r.body);
  res.prepare_payload();

  beast::get_lowest_layer(stream_).expires_after(core_->options.write_timeout);
  bhttp::async_write(stream_, res, beast::bind_front_handler(&Session::onWrite, shared_from_this()));
}

void Session::onWrite(beast::error_code ec, std::size_t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - request_started_).count();
  const unsigned status = response_ ? response_->result_int() : 0;
  const std::size_t bytes_out = response_ ? response_->body().size() : 0;
  // The path is not logged (it may carry a record id or an MRN); the route pattern cannot.
  const std::string_view method = request_.method.empty() ? std::string_view("-")
                                                          : std::string_view(request_.method).substr(0, 16);
  const std::string_view route = request_.route.empty() ? std::string_view("-") : std::string_view(request_.route);
  const std::string_view token = request_.token_id.empty() ? std::string_view("-") : std::string_view(request_.token_id);
  // Who connected: the verified client certificate (subject and fingerprint, never the token).
  const bool has_cert = identity_.verified && !identity_.fingerprint_sha256.empty();
  const std::string_view client = has_cert ? std::string_view(identity_.subject) : std::string_view("-");
  const std::string_view client_sha256 = has_cert ? std::string_view(identity_.fingerprint_sha256) : std::string_view("-");
  if (log::enabled(log::Level::Info)) {
    log::Line line(log::Level::Info, log::Category::Http, "request");
    line.kv("request_id", request_.request_id)
        .kv("method", method)
        .kv("route", route)
        .kv("status", status)
        .kv("bytes_in", request_bytes_)
        .kv("bytes_out", bytes_out)
        .kv("ms", ms)
        .kv("token", token)
        .kv("client", client)
        .kv("client_sha256", client_sha256)
        .kv("remote", remote_);
    if (ec) line.kv("write_error", ec.message());
  }

  const bool keep_alive = !ec && response_ && response_->keep_alive();
  response_.reset();
  request_ = Request{};  // the body may be large: do not hold it while idle
  request_bytes_ = 0;
  if (buffer_.size() == 0 && buffer_.capacity() > 2 * kFirstReadChunk) buffer_.shrink_to_fit();
  if (ec) {
    state_ = State::Closed;
    return closeSocket();
  }
  if (linger_after_response_) return lingerAndClose();
  if (!keep_alive) return closeGracefully();
  first_request_ = false;
  waitForRequest();
}

void Session::lingerAndClose() {
  // Closing a socket with unread input makes the kernel send RST, which can destroy our
  // response in flight to a client that is still uploading (it reads only after sending). So:
  // half-close, then read and discard until the client hangs up or kLingerTime passes.
  state_ = State::Closing;
  beast::error_code ignored;
  beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
  beast::get_lowest_layer(stream_).expires_after(kLingerTime);
  discardInput();
}

void Session::discardInput() {
  buffer_.clear();
  stream_.async_read_some(buffer_.prepare(kFirstReadChunk), [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (ec) {
      self->state_ = State::Closed;
      return self->closeSocket();
    }
    self->discardInput();
  });
}

void Session::closeGracefully() {
  state_ = State::Closing;
  beast::get_lowest_layer(stream_).expires_after(
      std::min<std::chrono::milliseconds>(core_->options.write_timeout, kShutdownTimeout));
  stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
    self->state_ = State::Closed;
    self->closeSocket();
  });
}

void Session::closeSocket() {
  beast::error_code ignored;
  beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(stream_).close();
}

void Session::shutdownSoon() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    switch (self->state_) {
      case State::Handshake:
      case State::Idle:
      case State::Reading: self->closeSocket(); break;
      case State::Handling:
      case State::Writing: self->close_after_response_ = true; break;
      case State::Closing:
      case State::Closed: break;
    }
  });
}

void Session::closeNow() { beast::get_lowest_layer(stream_).close(); }

}  // namespace gw::http::detail
