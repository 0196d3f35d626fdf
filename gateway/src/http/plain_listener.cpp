#include "http/plain_listener.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/log.hpp"

namespace gw::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto kDeadline = std::chrono::seconds(10);
constexpr std::size_t kMaxConnections = 16;  // scrapers are few; more are closed at once

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, const PlainListener::Handler& handler, std::atomic<std::size_t>& open)
      : stream_(std::move(socket)), handler_(handler), open_(open) {}
  ~Connection() { open_.fetch_sub(1); }

  void run() {
    parser_.header_limit(8 * 1024);
    parser_.body_limit(0);
    stream_.expires_after(kDeadline);
    bhttp::async_read(stream_, buffer_, parser_, beast::bind_front_handler(&Connection::onRead, shared_from_this()));
  }

 private:
  void onRead(beast::error_code ec, std::size_t) {
    if (ec) return close();
    const auto& req = parser_.get();
    Response answer;
    if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
      answer = {405, "text/plain; charset=utf-8", "only GET is served here\n", {{"Allow", "GET, HEAD"}}};
    } else {
      const std::string_view target(req.target().data(), req.target().size());
      const std::string_view path = target.substr(0, target.find('?'));
      answer = handler_(std::string_view(req.method_string().data(), req.method_string().size()), path);
    }
    response_.result(static_cast<unsigned>(answer.status));
    response_.set(bhttp::field::content_type, answer.content_type);
    response_.set(bhttp::field::cache_control, "no-store");
    for (const auto& [name, value] : answer.headers) response_.set(name, value);
    if (req.method() != bhttp::verb::head) response_.body() = std::move(answer.body);
    response_.keep_alive(false);
    response_.prepare_payload();
    stream_.expires_after(kDeadline);
    bhttp::async_write(stream_, response_, beast::bind_front_handler(&Connection::onWrite, shared_from_this()));
  }

  void onWrite(beast::error_code, std::size_t) { close(); }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  const PlainListener::Handler& handler_;
  std::atomic<std::size_t>& open_;
  beast::flat_buffer buffer_;
  bhttp::request_parser<bhttp::empty_body> parser_;
  bhttp::response<bhttp::string_body> response_;
};

}  // namespace

// Declared in this order so that the io_context (and the connections its handlers hold) goes
// before the handler and the count they refer to.
struct PlainListener::Impl {
  explicit Impl(Handler h) : handler(std::move(h)) {}
  Handler handler;
  std::atomic<std::size_t> open{0};
  std::uint16_t port = 0;
  bool stopped = false;
  net::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  std::thread thread;

  void accept() {
    acceptor.async_accept(net::make_strand(ioc), [self = this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !self->acceptor.is_open()) return;
      if (!ec) {
        if (self->open.fetch_add(1) >= kMaxConnections) {
          self->open.fetch_sub(1);
          beast::error_code ignored;
          socket.close(ignored);
        } else {
          std::make_shared<Connection>(std::move(socket), self->handler, self->open)->run();
        }
      }
      self->accept();
    });
  }
};

bool isLoopbackAddress(std::string_view address) {
  beast::error_code ec;
  const auto parsed = net::ip::make_address(std::string(address), ec);
  return !ec && parsed.is_loopback();
}

Result<std::unique_ptr<PlainListener>> PlainListener::start(const std::string& address, std::uint16_t port,
                                                            Handler handler) {
  if (!isLoopbackAddress(address)) {
    return makeError(ErrorCode::Config, "the plain-HTTP metrics listener must be on a loopback address, not " + address,
                     "server.metrics_listen",
                     "use 127.0.0.1:<port> (or [::1]:<port>); scrape from other hosts over the main TLS listener "
                     "with a token of the metrics role");
  }
  auto impl = std::make_shared<Impl>(std::move(handler));
  beast::error_code ec;
  const tcp::endpoint endpoint(net::ip::make_address(address), port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return makeError(ErrorCode::Config, "cannot listen on " + address + ":" + std::to_string(port) + ": " + ec.message(),
                     "server.metrics_listen", "choose a free port, or stop what holds it");
  }
  impl->port = impl->acceptor.local_endpoint().port();
  impl->accept();
  impl->thread = std::thread([raw = impl.get()] { raw->ioc.run(); });
  GW_LOG(Info, Http, "metrics_listening").kv("address", address).kv("port", impl->port);
  return std::unique_ptr<PlainListener>(new PlainListener(std::move(impl)));
}

PlainListener::PlainListener(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
PlainListener::~PlainListener() { stop(); }

void PlainListener::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  impl_->ioc.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  // The thread is gone: close the socket here, so nothing connects to a listener that no longer answers.
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
}

std::uint16_t PlainListener::port() const { return impl_ ? impl_->port : 0; }

}  // namespace gw::http
