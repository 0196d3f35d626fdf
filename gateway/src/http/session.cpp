#include "http/session.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
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
// client still sends, so that closing does not reset the connection before it read our answer;
// a client that sends nothing for kLingerIdle has stopped, and we close sooner.
constexpr std::chrono::milliseconds kLingerTime{5000};
constexpr std::chrono::milliseconds kLingerIdle{1000};

bool isPeerClose(const beast::error_code& ec) {
  // stream_truncated: the peer closed TCP without a TLS close_notify. Common and harmless for
  // HTTP, whose messages carry their own length (same reasoning as Beast's examples).
  return ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == ssl::error::stream_truncated ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe;
}

bool isHttpParseError(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category();
}

struct FramingError {
  Error error;
  int status;
};

/// RFC 9112 section 6.1 and 6.3: a request body's length comes from a final "chunked" transfer
/// coding or from Content-Length, never both. Any other Transfer-Encoding leaves the length
/// unknown, and reading on would take the rest of the body for the next request (smuggling), so
/// such a request is refused and the connection closed. Beast refuses some of these cases itself
/// (Content-Length before "chunked"), but not all (e.g. "gzip", or "gzip" with Content-Length).
std::optional<FramingError> framingError(const bhttp::request_parser<bhttp::string_body>::value_type& message) {
  if (message.find(bhttp::field::transfer_encoding) == message.end()) return std::nullopt;
  std::vector<std::string_view> codings;  // of every Transfer-Encoding field, in order
  for (const auto& field : message) {
    if (field.name() != bhttp::field::transfer_encoding) continue;
    std::string_view rest = field.value();
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      std::string_view coding = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t')) coding.remove_prefix(1);
      while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t')) coding.remove_suffix(1);
      if (!coding.empty()) codings.push_back(coding);
    }
  }
  if (message.find(bhttp::field::content_length) != message.end()) {
    return FramingError{makeError(ErrorCode::InvalidInput, "the request has both Transfer-Encoding and Content-Length",
                                  "Transfer-Encoding", "send either Content-Length or Transfer-Encoding: chunked"),
                        400};
  }
  if (codings.empty() || !beast::iequals(codings.back(), "chunked")) {
    return FramingError{makeError(ErrorCode::InvalidInput,
                                  "the request's Transfer-Encoding does not end in chunked, so its length is unknown",
                                  "Transfer-Encoding", "send Transfer-Encoding: chunked, or Content-Length"),
                        400};
  }
  if (codings.size() > 1) {
    return FramingError{makeError(ErrorCode::InvalidInput, "only the chunked Transfer-Encoding is supported",
                                  "Transfer-Encoding", "send the body uncompressed with Transfer-Encoding: chunked"),
                        501};
  }
  return std::nullopt;
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

// A bounded set of reasons for a failed TLS handshake (a metric label): what went wrong, never
// whose certificate.
std::string_view handshakeFailureReason(const beast::error_code& ec, const std::string& verify_error) {
  if (!verify_error.empty()) return "client_certificate_rejected";
  if (ec == beast::error::timeout) return "timeout";
  if (ec == net::error::message_size) return "unexpected_data";
  if (ec == net::ssl::error::stream_truncated || ec == net::error::eof || ec == net::error::connection_reset) {
    return "closed_by_client";
  }
  if (ec.category() == net::error::get_ssl_category()) {
    switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
      case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE: return "no_client_certificate";
      case SSL_R_CERTIFICATE_VERIFY_FAILED: return "client_certificate_rejected";
      case SSL_R_UNSUPPORTED_PROTOCOL:
      case SSL_R_WRONG_VERSION_NUMBER:
      case SSL_R_VERSION_TOO_LOW:
      case SSL_R_NO_PROTOCOLS_AVAILABLE: return "protocol_version";
      case SSL_R_NO_SHARED_CIPHER: return "no_shared_cipher";
      case SSL_R_HTTP_REQUEST: return "plain_http";
      case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED: return "server_certificate_refused";
      default: return "tls_error";
    }
  }
  return "other";
}

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
  for (auto& [key, connection] : sessions) {
    if (auto session = connection.session.lock()) out.push_back(std::move(session));
  }
  return out;
}

Core::Admission Core::registerConnection(const std::shared_ptr<Session>& session, const std::string& address) {
  Admission out;
  std::lock_guard lock(sessions_mutex);
  // The oldest connection that has not proved itself (from `from`, if given): silent ones first.
  auto oldestUnproven = [&](const std::string* from) -> const Session* {
    for (const auto* queue : {&silent, &unproven}) {
      for (const Session* candidate : *queue) {
        if (from == nullptr || sessions.at(candidate).address == *from) return candidate;
      }
    }
    return nullptr;
  };
  const std::size_t per_address_limit = std::min(options.max_connections_per_address, options.max_connections);
  const auto from_address = per_address.find(address);
  const Session* victim = nullptr;
  if (from_address != per_address.end() && from_address->second >= per_address_limit) {
    out.limit = "max_connections_per_address";
    victim = oldestUnproven(&address);
  } else if (sessions.size() >= options.max_connections) {
    out.limit = "max_connections";
    victim = oldestUnproven(nullptr);
  }
  if (!out.limit.empty() && victim == nullptr) return out;  // every connection has proved itself
  if (victim != nullptr) {
    out.evicted = sessions.at(victim).session.lock();
    // Its slot is free from now on, though its socket closes a moment later on its strand.
    const std::string victim_address = sessions.at(victim).address;
    auto& queue = sessions.at(victim).standing == Standing::Silent ? silent : unproven;
    queue.erase(sessions.at(victim).queued);
    sessions.erase(victim);
    if (--per_address[victim_address] == 0) per_address.erase(victim_address);
    ++evictions_unlogged;
    const auto now = std::chrono::steady_clock::now();
    if (now - eviction_logged >= std::chrono::seconds(1)) {
      out.evictions_to_log = evictions_unlogged;
      evictions_unlogged = 0;
      eviction_logged = now;
    }
  }
  silent.push_back(session.get());
  sessions.emplace(session.get(), Connection{session, address, Standing::Silent, std::prev(silent.end())});
  ++per_address[address];
  out.admitted = true;
  return out;
}

void Core::promote(const Session* session, Standing standing) {
  std::lock_guard lock(sessions_mutex);
  const auto found = sessions.find(session);
  if (found == sessions.end() || standing <= found->second.standing) return;
  Connection& connection = found->second;
  (connection.standing == Standing::Silent ? silent : unproven).erase(connection.queued);
  connection.standing = standing;
  if (standing == Standing::Unproven) connection.queued = unproven.insert(unproven.end(), session);
}

void Core::forget(const Session* session) {
  std::lock_guard lock(sessions_mutex);
  const auto found = sessions.find(session);
  if (found == sessions.end()) return;
  Connection& connection = found->second;
  if (connection.standing != Standing::Trusted) {
    (connection.standing == Standing::Silent ? silent : unproven).erase(connection.queued);
  }
  if (--per_address[connection.address] == 0) per_address.erase(connection.address);
  sessions.erase(found);
}

bool Core::reserveBodyBytes(std::size_t bytes) {
  std::size_t current = inflight_body_bytes.load();
  do {
    if (bytes > options.max_inflight_body_bytes || current > options.max_inflight_body_bytes - bytes) return false;
  } while (!inflight_body_bytes.compare_exchange_weak(current, current + bytes));
  return true;
}

void Core::releaseBodyBytes(std::size_t bytes) { inflight_body_bytes.fetch_sub(bytes); }

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
  const std::string address = peer.address().to_string();
  std::string remote = address + ":" + std::to_string(peer.port());
  socket.set_option(tcp::no_delay(true), ignored);  // small responses: do not wait for Nagle
  auto session = std::make_shared<Session>(core_, std::move(socket), remote);
  auto admission = core_->registerConnection(session, address);
  if (admission.evictions_to_log > 0) {
    // Rate-limited: under a flood this happens for every accept.
    GW_LOG(Warn, Http, "connections_evicted")
        .kv("count", admission.evictions_to_log)
        .kv("limit", admission.limit)
        .kv("max_connections", core_->options.max_connections)
        .kv("max_connections_per_address", core_->options.max_connections_per_address);
  }
  if (!admission.admitted) {
    GW_LOG(Warn, Http, "connection_limit")
        .kv("remote", remote)
        .kv("limit", admission.limit)
        .kv("max_connections", core_->options.max_connections)
        .kv("max_connections_per_address", core_->options.max_connections_per_address);
    session->closeNow();  // it has no operation pending yet
  } else {
    if (admission.evicted) admission.evicted->evict();
    session->run();
  }
  doAccept();
}

// ---------------------------------------------------------------------------------------------
// Session

Session::Session(std::shared_ptr<Core> core, tcp::socket&& socket, std::string remote)
    : core_(std::move(core)), stream_(std::move(socket), core_->tls), remote_(std::move(remote)) {}

Session::~Session() {
  releaseBody();
  core_->forget(this);
}

void Session::run() {
  net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::onRun, shared_from_this()));
}

void Session::evict() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    GW_LOG(Debug, Http, "connection_evicted").kv("remote", self->remote_);
    self->state_ = State::Closed;
    self->closeSocket();
  });
}

void Session::onRun() {
  if (core_->stopping) return closeSocket();
  // One deadline for the whole handshake, from the first byte the client owes us (its ClientHello,
  // read here so the connection stops counting as silent) to the end of the TLS handshake.
  beast::get_lowest_layer(stream_).expires_after(core_->options.handshake_timeout);
  beast::get_lowest_layer(stream_).async_read_some(buffer_.prepare(kFirstReadChunk),
                                                   beast::bind_front_handler(&Session::onClientHello, shared_from_this()));
}

void Session::onClientHello(beast::error_code ec, std::size_t bytes) {
  if (ec) {
    if (ec == beast::error::timeout) {
      GW_LOG(Debug, Http, "handshake_timeout").kv("remote", remote_);
      if (core_->options.observer && !core_->stopping) core_->options.observer->handshakeFailed("timeout");
    }
    state_ = State::Closed;
    return closeSocket();
  }
  buffer_.commit(bytes);
  core_->promote(this, Standing::Unproven);
  stream_.async_handshake(ssl::stream_base::server, buffer_.data(),
                          beast::bind_front_handler(&Session::onHandshake, shared_from_this()));
}

void Session::onHandshake(beast::error_code ec, std::size_t bytes_used) {
  buffer_.consume(bytes_used);
  if (!ec && buffer_.size() > 0) ec = net::error::message_size;  // more than a ClientHello before the handshake
  if (ec) {
    if (ec != net::error::operation_aborted && !core_->stopping) {
      // Reason and verification error only: certificate contents stay out of the log.
      const std::string verify_error = verifyFailure(stream_.native_handle());
      if (core_->options.observer) core_->options.observer->handshakeFailed(handshakeFailureReason(ec, verify_error));
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
  buffer_.clear();
  identity_ = peerIdentity(stream_.native_handle());
  if (identity_.verified) {
    trusted_ = true;
    core_->promote(this, Standing::Trusted);
  }
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
  request_.request_id = ids::randomHex(16);
  if (message.version() != 11) {
    return failRequest(
        makeError(ErrorCode::InvalidInput, "only HTTP/1.1 is supported", "request line", "send HTTP/1.1 requests"), 505);
  }
  if (auto framing = framingError(message)) return failRequest(framing->error, framing->status);
  keep_alive_ = message.keep_alive();
  request_.remote = remote_;
  request_.client = identity_;
  request_.headers.reserve(static_cast<std::size_t>(std::distance(message.begin(), message.end())));
  for (const auto& field : message) {
    request_.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  if (core_->stopping) {
    return failRequest(makeError(ErrorCode::Unavailable, "the gateway is shutting down", "", "retry shortly"), 503);
  }
  // The header phase: route, authentication and authorization decide before one byte of the body
  // is read, so a refused client cannot make us hold its body (issue 9, defect 4).
  if (auto parsed = parseTarget(message.target(), request_); !parsed) return refuse(errorResponse(parsed.error(), 400));
  std::optional<Response> refusal;
  try {
    refusal = core_->router->admitHeaders(request_);
  } catch (const std::exception&) {
    GW_LOG(Error, Http, "handler_exception").kv("request_id", request_.request_id).kv("route", request_.route);
    refusal = errorResponse(makeError(ErrorCode::Internal, "the request failed unexpectedly", "",
                                      "retry; if it happens again, report the X-Request-Id"));
  }
  if (refusal) return refuse(std::move(*refusal));
  if (!trusted_ && !request_.token_id.empty()) {  // the route's check accepted a token
    trusted_ = true;
    core_->promote(this, Standing::Trusted);
  }
  if (parser_->is_done()) return handleRequest();
  if (!reserveBody()) {
    GW_LOG(Warn, Http, "body_budget_exhausted")
        .kv("request_id", request_.request_id)
        .kv("route", request_.route)
        .kv("max_inflight_body_bytes", core_->options.max_inflight_body_bytes);
    auto busy = errorResponse(makeError(ErrorCode::Unavailable,
                                        "the gateway is receiving too many request bodies at once; nothing was done",
                                        "request body", "retry after the time in Retry-After"));
    busy.headers.emplace_back("Retry-After", "1");
    return refuse(std::move(busy));
  }
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
  request_bytes_ = message.body().size();
  request_.body = std::move(message.body());
  parser_.reset();
  state_ = State::Handling;

  if (core_->stopping) {
    return failRequest(makeError(ErrorCode::Unavailable, "the gateway is shutting down", "", "retry shortly"), 503);
  }
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

void Session::refuse(Response response) {
  // A body left unread cannot be skipped safely (its framing is the client's word), so after
  // refusing such a request the connection closes, discarding what the client still sends.
  if (!parser_->is_done()) {
    close_after_response_ = true;
    linger_after_response_ = true;
  }
  parser_.reset();
  state_ = State::Handling;
  onResponse(std::move(response));
}

bool Session::reserveBody() {
  // Beast allocates a Content-Length body whole when it starts reading it; a chunked body grows
  // up to max_body_bytes, so that is what it holds in the budget.
  const auto length = parser_->content_length();
  const std::size_t wanted = length ? static_cast<std::size_t>(*length) : core_->options.max_body_bytes;
  if (!core_->reserveBodyBytes(wanted)) return false;
  body_reserved_ = wanted;
  return true;
}

void Session::releaseBody() {
  if (body_reserved_ == 0) return;
  core_->releaseBodyBytes(body_reserved_);
  body_reserved_ = 0;
}

void Session::failRequest(const Error& error, int status) {
  if (request_.request_id.empty()) request_.request_id = ids::randomHex(16);
  parser_.reset();
  releaseBody();
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
  // no-store unless the handler chose otherwise: only public documents (the JWKS) may be cached.
  const bool handler_cache_control = std::any_of(r.headers.begin(), r.headers.end(),
                                                 [](const auto& h) { return beast::iequals(h.first, "Cache-Control"); });
  if (!handler_cache_control) res.set(bhttp::field::cache_control, "no-store");
  res.set(bhttp::field::strict_transport_security, "max-age=31536000");
  res.set("X-Content-Type-Options", "nosniff");
  for (const auto& [name, value] : core_->options.response_headers) res.set(name, value);
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

  if (core_->options.observer) {
    core_->options.observer->requestAnswered(request_.method, request_.route, status,
                                             std::chrono::steady_clock::now() - request_started_);
  }

  const bool keep_alive = !ec && response_ && response_->keep_alive();
  response_.reset();
  request_ = Request{};  // the body may be large: do not hold it while idle
  releaseBody();
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
  linger_deadline_ = std::chrono::steady_clock::now() + kLingerTime;
  discardInput();
}

void Session::discardInput() {
  buffer_.clear();
  const auto now = std::chrono::steady_clock::now();
  if (now >= linger_deadline_) {
    state_ = State::Closed;
    return closeSocket();
  }
  beast::get_lowest_layer(stream_).expires_after(
      std::min<std::chrono::steady_clock::duration>(kLingerIdle, linger_deadline_ - now));
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
