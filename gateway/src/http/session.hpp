#pragma once
// Internal to gw_http: shared server state, the listener and one TLS connection (session).
// Modelled on Beast's advanced server-flex example, TLS only.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http/request.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace gw::http::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

class Session;

/// How far a connection has proved itself, for the connection limits (issue 9, defect 1): when a
/// limit is reached, the oldest Silent connection makes room for a new one, else the oldest
/// Unproven one; a Trusted connection is never closed for a newcomer.
enum class Standing {
  Silent,    // accepted, not one byte received yet (an idle TCP connection)
  Unproven,  // sent something (a TLS ClientHello) but no verified client certificate nor token yet
  Trusted,   // TLS handshake with a verified client certificate, or a request with an accepted token
};

/// State shared by the Server, the Listener and every Session. Sessions hold it by shared_ptr,
/// so a Respond that arrives after the Server is gone still finds a live io_context to talk to.
struct Core {
  Core(ServerOptions options_in, std::shared_ptr<const Router> router_in, ssl::context tls_in);

  const ServerOptions options;
  const std::shared_ptr<const Router> router;
  net::io_context ioc;
  ssl::context tls;

  std::atomic<bool> stopping{false};

  // Bytes of request bodies reserved by connections (options.max_inflight_body_bytes at most).
  std::atomic<std::size_t> inflight_body_bytes{0};
  bool reserveBodyBytes(std::size_t bytes);
  void releaseBodyBytes(std::size_t bytes);

  // Respond may be called from any thread. It posts to the session's strand only while io
  // threads can still run the post; after stop() it is dropped (shared lock: cheap, concurrent).
  std::shared_mutex post_mutex;
  bool accepting_posts = true;

  // The live connections, their standing and age, and how many come from each address.
  struct Connection {
    std::weak_ptr<Session> session;
    std::string address;
    Standing standing = Standing::Silent;
    std::list<const Session*>::iterator queued;  // its place in `silent` or `unproven`
  };
  struct Admission {
    bool admitted = false;
    std::shared_ptr<Session> evicted;  // to close: it made room (may be null if it was closing anyway)
    std::string_view limit;            // the limit that was reached, if any
    std::size_t evictions_to_log = 0;  // evictions since the last log line (logged at most once a second)
  };
  std::mutex sessions_mutex;
  std::unordered_map<const Session*, Connection> sessions;
  std::list<const Session*> silent, unproven;  // oldest first
  std::unordered_map<std::string, std::size_t> per_address;
  std::size_t evictions_unlogged = 0;
  std::chrono::steady_clock::time_point eviction_logged{};

  /// Counts a new connection from `address` against the limits, making room if need be.
  Admission registerConnection(const std::shared_ptr<Session>& session, const std::string& address);
  /// Moves a connection up (never down) in standing.
  void promote(const Session* session, Standing standing);
  /// Removes a connection (idempotent).
  void forget(const Session* session);
  std::vector<std::shared_ptr<Session>> liveSessions();

  std::vector<std::thread> threads;
  std::mutex run_mutex;
  std::condition_variable run_cv;
  int running = 0;
  void runThread();
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  explicit Listener(std::shared_ptr<Core> core);
  Status open();
  std::uint16_t port() const { return port_; }
  void run();
  /// Stops accepting (posted to the acceptor's strand).
  void close();

 private:
  void doAccept();
  void onAccept(beast::error_code ec, tcp::socket socket);

  std::shared_ptr<Core> core_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_timer_;
  std::uint16_t port_ = 0;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<Core> core, tcp::socket&& socket, std::string remote);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void run();
  /// From any thread: closes the connection now (it made room for a newer one).
  void evict();
  /// From any thread: close if idle, otherwise close after the response in progress.
  void shutdownSoon();
  /// Only while no io thread runs (Server::stop after joining): closes the socket now.
  void closeNow();
  /// From any thread: hands the response to the session's strand (or drops it after stop()).
  void deliver(Response response);

 private:
  enum class State { Handshake, Idle, Reading, Handling, Writing, Closing, Closed };

  void onRun();
  void onClientHello(beast::error_code ec, std::size_t bytes);
  void onHandshake(beast::error_code ec, std::size_t bytes_used);
  void waitForRequest();
  void onFirstBytes(beast::error_code ec, std::size_t bytes);
  void readHeader();
  void onHeader(beast::error_code ec, std::size_t bytes);
  void onContinueSent(beast::error_code ec, std::size_t bytes);
  void readBody();
  void onBody(beast::error_code ec, std::size_t bytes);
  void onReadError(beast::error_code ec);
  void handleRequest();
  /// Answers on the headers alone; closes afterwards if the request has a body.
  void refuse(Response response);
  /// Reserves this request's body in the server-wide budget; false when it does not fit.
  bool reserveBody();
  void releaseBody();
  void failRequest(const Error& error, int status);
  void onResponse(Response response);
  void onWrite(beast::error_code ec, std::size_t bytes);
  void closeGracefully();
  void lingerAndClose();
  void discardInput();
  void closeSocket();
  Respond makeRespond();

  std::shared_ptr<Core> core_;  // first member: outlives the stream and its io_context use
  beast::ssl_stream<beast::tcp_stream> stream_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::string_body>> response_;
  Request request_;
  ClientIdentity identity_;
  State state_ = State::Handshake;
  bool first_request_ = true;
  bool trusted_ = false;  // Standing::Trusted reported to the Core
  bool keep_alive_ = false;
  bool close_after_response_ = false;
  bool linger_after_response_ = false;  // input may be left unread: drain before closing
  std::size_t request_bytes_ = 0;
  std::size_t body_reserved_ = 0;  // of Core::inflight_body_bytes, held until the response is written
  std::chrono::steady_clock::time_point request_started_;
  std::chrono::steady_clock::time_point read_deadline_;
  std::chrono::steady_clock::time_point linger_deadline_;
};

}  // namespace gw::http::detail
