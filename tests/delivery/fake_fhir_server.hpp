#pragma once
// In-process fault-injection HTTPS "FHIR server" for the delivery tests: listens on
// 127.0.0.1:0, answers each request with the next scripted reply (or misbehaves as scripted),
// and records what it received. Not a FHIR server: real-partner tests run against Medplum.
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace gw::delivery::fakes {

struct ScriptedReply {
  enum class Action {
    Respond,              // answer and keep the connection open (if the client asked to)
    RespondThenClose,     // answer, then drop the TCP connection without close_notify
    RespondThenShutdown,  // answer, then send TLS close_notify and close (a polite idle close)
    Hang,                 // read the request, never answer
    CloseWithoutReply,    // read the request, drop the connection
  };
  Action action = Action::Respond;
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct RecordedRequest {
  std::string method;
  std::string target;
  std::string body;
  std::map<std::string, std::string> headers;  // lowercase names
  int connection = 0;                          // 1-based accept number
  std::string sni;                             // server name the client sent, "" if none
  std::string client_cn;                       // CN of the client certificate, "" if none
};

struct FakeServerOptions {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // non-empty: require a client certificate signed by this CA
};

class FakeFhirServer {
 public:
  explicit FakeFhirServer(const FakeServerOptions& options) {
    namespace ssl = boost::asio::ssl;
    ctx_.use_certificate_chain_file(options.cert_file);
    ctx_.use_private_key_file(options.key_file, ssl::context::pem);
    if (!options.client_ca_file.empty()) {
      ctx_.load_verify_file(options.client_ca_file);
      ctx_.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    }
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    boost::asio::co_spawn(ioc_, acceptLoop(), boost::asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }

  ~FakeFhirServer() {
    ioc_.stop();
    thread_.join();
  }

  FakeFhirServer(const FakeFhirServer&) = delete;
  FakeFhirServer& operator=(const FakeFhirServer&) = delete;

  unsigned short port() const { return port_; }
  std::string baseUrl(const std::string& host = "127.0.0.1") const {
    return "https://" + host + ":" + std::to_string(port_) + "/fhir/R4";
  }

  void push(ScriptedReply reply) {
    std::lock_guard lock(mutex_);
    script_.push_back(std::move(reply));
  }
  std::vector<RecordedRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  int accepts() const { return accepts_.load(); }
  int handshakeFailures() const { return handshake_failures_.load(); }
  /// Connections the server itself closed after a RespondThenClose/RespondThenShutdown reply.
  int serverCloses() const { return server_closes_.load(); }

  /// Waits (briefly) until `predicate` holds: the server runs on its own thread.
  template <class Predicate>
  static bool eventually(Predicate predicate, std::chrono::milliseconds limit = std::chrono::milliseconds(2000)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!predicate()) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

 private:
  using tcp = boost::asio::ip::tcp;
  using Stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

  boost::asio::awaitable<void> acceptLoop() {
    for (;;) {
      tcp::socket socket = co_await acceptor_.async_accept(boost::asio::use_awaitable);
      socket.set_option(tcp::no_delay(true));  // else Nagle + delayed ACK add 40 ms to some replies
      const int id = ++accepts_;
      boost::asio::co_spawn(ioc_, session(std::move(socket), id), boost::asio::detached);
    }
  }

  ScriptedReply next() {
    std::lock_guard lock(mutex_);
    if (script_.empty()) return ScriptedReply{ScriptedReply::Action::Respond, 500, "no scripted reply", {}};
    ScriptedReply reply = std::move(script_.front());
    script_.pop_front();
    return reply;
  }

  static std::string peerCommonName(SSL* ssl) {
    X509* cert = SSL_get1_peer_certificate(ssl);
    if (cert == nullptr) return {};
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    X509_free(cert);
    return cn;
  }

  boost::asio::awaitable<void> session(tcp::socket socket, int connection) {
    namespace beast = boost::beast;
    namespace http = beast::http;
    using boost::asio::use_awaitable;
    Stream stream(std::move(socket), ctx_);
    try {
      co_await stream.async_handshake(boost::asio::ssl::stream_base::server, use_awaitable);
    } catch (const std::exception&) {
      ++handshake_failures_;
      co_return;
    }
    const char* sni = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
    const std::string client_cn = peerCommonName(stream.native_handle());
    beast::flat_buffer buffer;
    try {
      for (;;) {
        http::request<http::string_body> req;
        co_await http::async_read(stream, buffer, req, use_awaitable);
        RecordedRequest recorded{std::string(req.method_string()),
                                 std::string(req.target()),
                                 req.body(),
                                 {},
                                 connection,
                                 sni ? sni : "",
                                 client_cn};
        for (const auto& field : req) {
          std::string name(field.name_string());
          for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          recorded.headers[name] = std::string(field.value());
        }
        {
          std::lock_guard lock(mutex_);
          requests_.push_back(std::move(recorded));
        }
        ScriptedReply reply = next();
        using Action = ScriptedReply::Action;
        if (reply.action == Action::CloseWithoutReply) {
          beast::get_lowest_layer(stream).socket().close();
          co_return;
        }
        if (reply.action == Action::Hang) {
          boost::asio::steady_timer forever(ioc_, std::chrono::hours(1));
          co_await forever.async_wait(use_awaitable);
          co_return;
        }
        http::response<http::string_body> res{static_cast<http::status>(reply.status), req.version()};
        for (const auto& [name, value] : reply.headers) res.set(name, value);
        if (res.find(http::field::content_type) == res.end()) res.set(http::field::content_type, "application/fhir+json");
        res.body() = reply.body;
        if (res.find(http::field::connection) == res.end()) res.keep_alive(req.keep_alive());
        res.prepare_payload();
        co_await http::async_write(stream, res, use_awaitable);
        if (reply.action == Action::RespondThenClose) {
          beast::get_lowest_layer(stream).socket().close();
          ++server_closes_;
          co_return;
        }
        if (reply.action == Action::RespondThenShutdown) {
          // Sends close_notify, then gives up waiting for the client's reply.
          beast::get_lowest_layer(stream).expires_after(std::chrono::milliseconds(100));
          try {
            co_await stream.async_shutdown(use_awaitable);
          } catch (const std::exception&) {
          }
          beast::get_lowest_layer(stream).close();
          ++server_closes_;
          co_return;
        }
        if (!res.keep_alive()) {
          beast::get_lowest_layer(stream).close();
          co_return;
        }
      }
    } catch (const std::exception&) {
      // Client went away or sent garbage: the session ends.
    }
  }

  boost::asio::ssl::context ctx_{boost::asio::ssl::context::tls_server};  // outlives every session
  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_{ioc_};
  unsigned short port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::deque<ScriptedReply> script_;
  std::vector<RecordedRequest> requests_;
  std::atomic<int> accepts_{0};
  std::atomic<int> handshake_failures_{0};
  std::atomic<int> server_closes_{0};
};

}  // namespace gw::delivery::fakes
