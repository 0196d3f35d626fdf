#include "support/tls_test_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/ssl.h>

#include <optional>
#include <stdexcept>

namespace gw::test {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(key, name)) return value;
  }
  return {};
}

struct TlsTestClient::Impl {
  explicit Impl(TlsClientOptions o) : options(std::move(o)), tls(ssl::context::tls_client) {
    SSL_CTX* ctx = tls.native_handle();
    if (options.allow_legacy) SSL_CTX_set_security_level(ctx, 0);
    if (options.min_tls_version != 0) SSL_CTX_set_min_proto_version(ctx, options.min_tls_version);
    if (options.max_tls_version != 0) SSL_CTX_set_max_proto_version(ctx, options.max_tls_version);
    if (!options.tls12_ciphers.empty() && SSL_CTX_set_cipher_list(ctx, options.tls12_ciphers.c_str()) != 1) {
      throw std::runtime_error("bad tls12_ciphers: " + options.tls12_ciphers);
    }
    if (!options.ca_file.empty()) {
      tls.load_verify_file(options.ca_file);
      tls.set_verify_mode(ssl::verify_peer);
    } else {
      tls.set_verify_mode(ssl::verify_none);
    }
    if (!options.cert_file.empty()) {
      tls.use_certificate_chain_file(options.cert_file);
      tls.use_private_key_file(options.key_file, ssl::context::pem);
    }
  }

  // Runs one async operation to completion (or to the stream's deadline) on our io_context.
  template <class Initiate>
  boost::system::error_code run(Initiate&& initiate) {
    boost::system::error_code result = net::error::would_block;
    ioc.restart();
    initiate([&result](boost::system::error_code ec, auto&&...) { result = ec; });
    ioc.run();
    return result;
  }

  void arm() { beast::get_lowest_layer(*stream).expires_after(options.timeout); }

  TlsClientOptions options;
  net::io_context ioc;
  ssl::context tls;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream;
  beast::flat_buffer buffer;
};

TlsTestClient::TlsTestClient(TlsClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
TlsTestClient::~TlsTestClient() {
  if (impl_) close();
}
TlsTestClient::TlsTestClient(TlsTestClient&&) noexcept = default;
TlsTestClient& TlsTestClient::operator=(TlsTestClient&&) noexcept = default;

boost::system::error_code TlsTestClient::connect(std::uint16_t port, const std::string& host) {
  close();
  Impl& s = *impl_;
  s.stream.emplace(s.ioc, s.tls);
  s.buffer.clear();
  const tcp::endpoint endpoint(net::ip::make_address(host), port);
  s.arm();
  auto ec = s.run([&](auto handler) { beast::get_lowest_layer(*s.stream).async_connect(endpoint, handler); });
  if (ec) return ec;
  if (!s.options.server_name.empty()) {
    SSL_set_tlsext_host_name(s.stream->native_handle(), s.options.server_name.c_str());
    if (!s.options.ca_file.empty()) s.stream->set_verify_callback(ssl::host_name_verification(s.options.server_name));
  }
  s.arm();
  ec = s.run([&](auto handler) { s.stream->async_handshake(ssl::stream_base::client, handler); });
  if (ec) s.stream.reset();
  return ec;
}

bool TlsTestClient::connected() const { return impl_->stream.has_value(); }

boost::system::error_code TlsTestClient::writeRaw(std::string_view bytes) {
  Impl& s = *impl_;
  if (!s.stream) return net::error::not_connected;
  s.arm();
  return s.run([&](auto handler) { net::async_write(*s.stream, net::buffer(bytes.data(), bytes.size()), handler); });
}

HttpResponse TlsTestClient::readResponse() {
  Impl& s = *impl_;
  HttpResponse out;
  if (!s.stream) {
    out.error = net::error::not_connected;
    return out;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  s.arm();
  out.error = s.run([&](auto handler) { http::async_read(*s.stream, s.buffer, parser, handler); });
  if (out.error) return out;
  const auto& message = parser.get();
  out.status = static_cast<int>(message.result_int());
  out.body = message.body();
  out.keep_alive = message.keep_alive();
  for (const auto& field : message) out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  return out;
}

HttpResponse TlsTestClient::request(std::string_view method, std::string_view target, std::string body,
                                    const std::vector<std::pair<std::string, std::string>>& headers) {
  Impl& s = *impl_;
  HttpResponse out;
  if (!s.stream) {
    out.error = net::error::not_connected;
    return out;
  }
  http::request<http::string_body> req;
  req.version(11);
  req.method_string(method);
  req.target(target);
  req.set(http::field::host, s.options.server_name.empty() ? "localhost" : s.options.server_name);
  for (const auto& [name, value] : headers) req.set(name, value);
  const bool has_body = !body.empty() || method == "POST" || method == "PUT";
  req.body() = std::move(body);
  if (has_body) req.prepare_payload();
  s.arm();
  out.error = s.run([&](auto handler) { http::async_write(*s.stream, req, handler); });
  if (out.error) return out;
  return readResponse();
}

bool TlsTestClient::waitForClose(std::chrono::milliseconds timeout) {
  Impl& s = *impl_;
  if (!s.stream) return true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    beast::get_lowest_layer(*s.stream).expires_at(deadline);
    std::size_t got = 0;
    boost::system::error_code result = net::error::would_block;
    s.ioc.restart();
    s.stream->async_read_some(s.buffer.prepare(4096), [&](boost::system::error_code ec, std::size_t n) {
      result = ec;
      got = n;
    });
    s.ioc.run();
    if (result == beast::error::timeout) {
      s.stream.reset();  // the deadline closed the socket; the connection is unusable now
      return false;
    }
    if (result) return true;  // eof, stream_truncated, reset, alert: the server is gone
    s.buffer.commit(got);
    s.buffer.consume(s.buffer.size());
  }
}

std::string TlsTestClient::protocol() const { return impl_->stream ? SSL_get_version(impl_->stream->native_handle()) : ""; }

std::string TlsTestClient::cipher() const {
  return impl_->stream ? SSL_get_cipher_name(impl_->stream->native_handle()) : "";
}

void TlsTestClient::close() {
  Impl& s = *impl_;
  if (!s.stream) return;
  beast::error_code ignored;
  beast::get_lowest_layer(*s.stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(*s.stream).close();
  s.stream.reset();
  // Let cancelled handlers (if any) finish so the io_context holds nothing of the old stream.
  s.ioc.restart();
  s.ioc.poll();
}

HttpResponse tlsRequest(std::uint16_t port, const TlsClientOptions& options, std::string_view method,
                        std::string_view target, std::string body,
                        const std::vector<std::pair<std::string, std::string>>& headers) {
  TlsTestClient client(options);
  HttpResponse out;
  out.error = client.connect(port);
  if (out.error) return out;
  return client.request(method, target, std::move(body), headers);
}

}  // namespace gw::test
