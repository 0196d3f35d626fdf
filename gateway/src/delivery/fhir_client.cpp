#include "delivery/fhir_client.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <chrono>
#include <fstream>
#include <optional>
#include <vector>

#include "common/crypto.hpp"
#include "common/log.hpp"
#include "delivery/signing_key.hpp"

namespace gw::delivery {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Stream = beast::ssl_stream<beast::tcp_stream>;

namespace {

constexpr std::size_t kMaxResponseHeader = 64 * 1024;
constexpr std::string_view kUserAgent = "fhir-gateway/" GW_VERSION;
constexpr std::string_view kFhirJson = "application/fhir+json";

struct BaseUrl {
  std::string host;  // without brackets for IPv6
  std::string port;
  std::string path;  // no trailing '/', may be empty
  bool host_is_ip = false;
  std::string host_header;  // host[:port], port omitted when 443 (as curl and browsers do)
  std::string authority;    // host:port, for messages
};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

Error configError(const PartnerEndpoint& ep, std::string_view field, std::string message, std::string hint) {
  return makeError(ErrorCode::Config, "partner " + ep.id + ": " + message, std::string(field), std::move(hint));
}

Result<BaseUrl> parseBaseUrl(const PartnerEndpoint& ep) {
  const std::string_view url = ep.base_url;
  const std::string example_hint = "set base_url to the partner's FHIR base, e.g. https://fhir.example.org:443/fhir/R4";
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return configError(ep, "base_url", "base_url is not an absolute https:// URL", example_hint);
  }
  const std::string scheme = lower(url.substr(0, scheme_end));
  if (scheme == "http") {
    return configError(ep, "base_url",
                       "base_url uses http://, but partners are only reached over https:// (records must never "
                       "cross the network unencrypted)",
                       "change base_url to the partner's https:// address");
  }
  if (scheme != "https") {
    return configError(ep, "base_url", "base_url has unsupported scheme '" + scheme + "'", example_hint);
  }
  std::string_view rest = url.substr(scheme_end + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return configError(ep, "base_url", "base_url must not contain a query or fragment", example_hint);
  }
  const auto slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return configError(ep, "base_url", "base_url must not contain user info (user@host)",
                       "put credentials in bearer_token_env or client_cert_file, never in the URL");
  }

  BaseUrl out;
  std::string_view port;
  bool ipv6 = false;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return configError(ep, "base_url", "base_url has an unterminated IPv6 literal", example_hint);
    }
    out.host = std::string(authority.substr(1, close - 1));
    ipv6 = true;
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return configError(ep, "base_url", "base_url has junk after the IPv6 literal", example_hint);
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    out.host = lower(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) return configError(ep, "base_url", "base_url has no host", example_hint);
  out.port = port.empty() ? "443" : std::string(port);
  const bool digits = out.port.size() <= 5 && out.port.find_first_not_of("0123456789") == std::string::npos;
  if (!digits || std::stoi(out.port) < 1 || std::stoi(out.port) > 65535) {
    return configError(ep, "base_url", "base_url has an invalid port '" + std::string(port) + "'",
                       "use a port number between 1 and 65535");
  }
  boost::system::error_code ec;
  asio::ip::make_address(out.host, ec);
  out.host_is_ip = !ec;
  if (ipv6 && !out.host_is_ip) {
    return configError(ep, "base_url", "base_url has an invalid IPv6 literal", example_hint);
  }
  // Host and path end up in the Host header and request line: only URL characters may pass.
  const bool host_ok = out.host_is_ip || std::all_of(out.host.begin(), out.host.end(), [](unsigned char c) {
                         return std::isalnum(c) || c == '-' || c == '.';
                       });
  if (!host_ok) return configError(ep, "base_url", "base_url has an invalid host name", example_hint);
  static constexpr std::string_view kPathChars = "-._~!$&'()*+,;=:@/%";
  const bool path_ok = std::all_of(path.begin(), path.end(), [](unsigned char c) {
    return std::isalnum(c) || kPathChars.find(static_cast<char>(c)) != std::string_view::npos;
  });
  if (!path_ok) {
    return configError(ep, "base_url", "base_url path has characters that are not allowed in a URL",
                       "percent-encode them, e.g. a space as %20");
  }
  const std::string host_in_url = ipv6 ? "[" + out.host + "]" : out.host;
  out.authority = host_in_url + ":" + out.port;
  out.host_header = out.port == "443" ? host_in_url : out.authority;
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.path = std::string(path);
  return out;
}

Status checkReadable(const PartnerEndpoint& ep, std::string_view field, const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return configError(ep, field, "cannot read " + std::string(what) + " file '" + path + "'",
                       "check that " + std::string(field) + " names an existing PEM file readable by the gateway user");
  }
  return ok();
}

// TLS alerts by which a partner says it does not accept our client certificate.
bool clientCertificateRejected(const beast::error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return false;
  switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED: return true;
    default: return false;
  }
}

bool closedByPeer(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::connection_aborted || ec == asio::error::broken_pipe || ec == ssl::error::stream_truncated;
}

// Runs one asynchronous operation to completion on the client's private io_context. Async
// operations are used (not Beast's blocking calls) because tcp_stream's expires_after only
// bounds asynchronous operations.
template <class Initiate>
beast::error_code runOp(asio::io_context& ioc, Initiate&& initiate) {
  beast::error_code result = asio::error::would_block;
  initiate([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

// The proxy a partner is reached through (PartnerEndpoint::proxy_url).
struct ProxyUrl {
  std::string host;
  std::string port;
  bool host_is_ip = false;
  std::string authority;            // host:port, for messages
  std::string proxy_authorization;  // "Basic ..." or empty (a secret: never logged)
};

Result<std::optional<ProxyUrl>> parseProxy(const PartnerEndpoint& ep) {
  if (ep.proxy_url.empty()) return std::optional<ProxyUrl>{};
  const std::string hint = "set proxy_url to the proxy's http:// address, e.g. http://proxy.example.org:3128";
  std::string_view url = ep.proxy_url;
  if (lower(url.substr(0, 7)) != "http://") {
    return configError(ep, "proxy_url",
                       "proxy_url must start with http:// (a CONNECT proxy; the TLS to the partner "
                       "runs inside the tunnel)",
                       hint);
  }
  url.remove_prefix(7);
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  if (url.find_first_of("/?#@") != std::string_view::npos) {
    return configError(ep, "proxy_url", "proxy_url must be http://host:port only (no path, query or user info)",
                       hint + "; put credentials in proxy_auth_file");
  }
  ProxyUrl out;
  if (!url.empty() && url.front() == '[') {
    const auto close = url.find(']');
    if (close == std::string_view::npos || close + 1 >= url.size() || url[close + 1] != ':') {
      return configError(ep, "proxy_url", "proxy_url needs an explicit port", hint);
    }
    out.host = std::string(url.substr(1, close - 1));
    out.port = std::string(url.substr(close + 2));
  } else {
    const auto colon = url.rfind(':');
    if (colon == std::string_view::npos) return configError(ep, "proxy_url", "proxy_url needs an explicit port", hint);
    out.host = lower(url.substr(0, colon));
    out.port = std::string(url.substr(colon + 1));
  }
  const bool digits = !out.port.empty() && out.port.size() <= 5 &&
                      out.port.find_first_not_of("0123456789") == std::string::npos;
  if (out.host.empty() || !digits || std::stoi(out.port) < 1 || std::stoi(out.port) > 65535) {
    return configError(ep, "proxy_url", "proxy_url has no host or an invalid port", hint);
  }
  beast::error_code ec;
  asio::ip::make_address(out.host, ec);
  out.host_is_ip = !ec;
  out.authority = (out.host.find(':') != std::string::npos ? "[" + out.host + "]" : out.host) + ":" + out.port;
  if (!ep.proxy_auth_file.empty()) {
    GW_TRY(crypto::checkPrivateFile(ep.proxy_auth_file, "the proxy credentials file", "proxy_auth_file"));
    std::ifstream in(ep.proxy_auth_file, std::ios::binary);
    std::string pair((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!pair.empty() && (pair.back() == '\n' || pair.back() == '\r')) pair.pop_back();
    if (pair.find(':') == std::string::npos || pair.find_first_of("\r\n") != std::string::npos) {
      crypto::wipe(pair);
      return configError(ep, "proxy_auth_file",
                         "the proxy credentials file '" + ep.proxy_auth_file + "' must hold one line user:password",
                         "write it as user:password (chmod 600)");
    }
    std::string b64 = base64url(pair);
    crypto::wipe(pair);
    for (char& c : b64) {
      if (c == '-') c = '+';
      else if (c == '_') c = '/';
    }
    while (b64.size() % 4 != 0) b64 += '=';
    out.proxy_authorization = "Basic " + b64;
    crypto::wipe(b64);
  }
  return std::optional<ProxyUrl>(std::move(out));
}

}  // namespace

struct FhirClient::Impl {
  Impl(PartnerEndpoint e, BaseUrl u, std::unique_ptr<CredentialSource> c)
      : ep(std::move(e)), url(std::move(u)), credentials(std::move(c)) {}

  PartnerEndpoint ep;
  BaseUrl url;
  std::optional<ProxyUrl> proxy;
  std::unique_ptr<CredentialSource> credentials;
  asio::io_context ioc{1};
  ssl::context ctx{ssl::context::tls_client};
  std::optional<Stream> stream;  // engaged while a kept-alive connection is open
  beast::flat_buffer buffer;
  int connections_opened = 0;

  Status loadTls();
  Status connect();
  Status openTunnel();
  Error proxyError(std::string message) const;
  void close();
  Result<HttpResult> exchange(http::request<http::string_body>& req, bool& closed_before_response);
  Result<HttpResult> send(http::request<http::string_body>& req);
  /// send() with the credential source's Authorization, and one renewal on a 401.
  Result<HttpResult> sendWithCredential(http::request<http::string_body>& req);
  http::request<http::string_body> makeRequest(http::verb verb, std::string target) const;
  Error transportError(std::string_view step, const beast::error_code& ec, std::chrono::milliseconds timeout) const;
};

Status FhirClient::Impl::loadTls() {
  SSL_CTX* native = ctx.native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
    return makeError(ErrorCode::Internal, "cannot restrict TLS to version 1.2 or later", "partner " + ep.id);
  }
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression);
  ctx.set_verify_mode(ssl::verify_peer);
  // An encrypted key must not make OpenSSL prompt on the terminal of a service: fail instead.
  ctx.set_password_callback([](std::size_t, ssl::context::password_purpose) { return std::string(); });

  if (ep.ca_file.empty()) {
    return configError(ep, "ca_file", "ca_file is required (the partner's server certificate is always verified)",
                       "set ca_file to a PEM bundle with the CA that signs the partner's server certificate");
  }
  GW_TRY(checkReadable(ep, "ca_file", ep.ca_file, "CA"));
  beast::error_code ec;
  ctx.load_verify_file(ep.ca_file, ec);
  if (ec) {
    return configError(ep, "ca_file", "cannot load CA file '" + ep.ca_file + "': " + ec.message(),
                       "ca_file must hold PEM certificate(s) of the CA that signs the partner's server certificate");
  }

  const bool has_cert = !ep.client_cert_file.empty();
  const bool has_key = !ep.client_key_file.empty();
  if (has_cert != has_key) {
    return configError(ep, has_cert ? "client_key_file" : "client_cert_file",
                       "client_cert_file and client_key_file must be set together", "set both for mutual TLS, or neither");
  }
  if (has_cert) {
    GW_TRY(checkReadable(ep, "client_cert_file", ep.client_cert_file, "client certificate"));
    GW_TRY(checkReadable(ep, "client_key_file", ep.client_key_file, "client key"));
    ctx.use_certificate_chain_file(ep.client_cert_file, ec);
    if (ec) {
      return configError(ep, "client_cert_file",
                         "cannot load client certificate '" + ep.client_cert_file + "': " + ec.message(),
                         "client_cert_file must be a PEM certificate (chain) for the gateway's client identity");
    }
    ctx.use_private_key_file(ep.client_key_file, ssl::context::pem, ec);
    const bool mismatch = ec && ec.category() == asio::error::get_ssl_category() &&
                          ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH;
    if (mismatch || (!ec && SSL_CTX_check_private_key(native) != 1)) {
      return configError(ep, "client_key_file",
                         "client key '" + ep.client_key_file + "' does not match client certificate '" +
                             ep.client_cert_file + "'",
                         "configure the key that belongs to the certificate");
    }
    if (ec) {
      return configError(ep, "client_key_file", "cannot load client key '" + ep.client_key_file + "': " + ec.message(),
                         "client_key_file must be an unencrypted PEM private key");
    }
  }
  return ok();
}

Error FhirClient::Impl::transportError(std::string_view step, const beast::error_code& ec,
                                       std::chrono::milliseconds timeout) const {
  const std::string prefix = "partner " + ep.id + ": " + std::string(step) + ": ";
  if (ec == beast::error::timeout) {
    return makeError(ErrorCode::Timeout,
                     prefix + "timed out after " + std::to_string(timeout.count()) + " ms (" + url.authority + ")",
                     ep.base_url, "the partner did not answer in time; the delivery will be retried");
  }
  if (clientCertificateRejected(ec)) {
    // With TLS 1.3 this arrives on the first read, after our handshake already succeeded.
    return makeError(
        ErrorCode::Unavailable,
        prefix + "the partner rejected the client certificate: " + ec.message() + " (" + url.authority + ")", ep.base_url,
        ep.client_cert_file.empty()
            ? "the partner requires mutual TLS: set client_cert_file and client_key_file"
            : "check that client_cert_file ('" + ep.client_cert_file + "') is valid and issued by a CA the partner trusts");
  }
  std::string hint;
  if (step == "resolve") hint = "check the host name in base_url and the gateway's DNS";
  else if (step == "connect")
    hint = "check that the partner server is up and reachable from the gateway (host, port, firewall)";
  else hint = "the partner closed or reset the connection; the delivery will be retried";
  return makeError(ErrorCode::Unavailable, prefix + ec.message() + " (" + url.authority + ")", ep.base_url, std::move(hint));
}

void FhirClient::Impl::close() {
  if (!stream) return;
  // No TLS close_notify: waiting for the peer's reply could stall a worker on a dead partner.
  beast::error_code ignored;
  auto& socket = beast::get_lowest_layer(*stream).socket();
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
  stream.reset();
  buffer.clear();
}

Status FhirClient::Impl::connect() {
  close();
  std::vector<tcp::endpoint> endpoints;
  // Through a proxy the TCP connection goes to the proxy; the partner's name is resolved there.
  const std::string& host = proxy ? proxy->host : url.host;
  const std::string& port_text = proxy ? proxy->port : url.port;
  const auto port = static_cast<unsigned short>(std::stoi(port_text));
  if (proxy ? proxy->host_is_ip : url.host_is_ip) {
    endpoints.emplace_back(asio::ip::make_address(host), port);
  } else {
    // Bounded by the system resolver's own timeouts: getaddrinfo cannot be cancelled.
    tcp::resolver resolver(ioc);
    beast::error_code ec = asio::error::would_block;
    resolver.async_resolve(host, port_text, [&](beast::error_code e, const tcp::resolver::results_type& results) {
      ec = e;
      for (const auto& r : results) endpoints.push_back(r.endpoint());
    });
    ioc.restart();
    ioc.run();
    if (ec) {
      if (proxy) return proxyError("cannot resolve the proxy: " + ec.message());
      return transportError("resolve", ec, ep.connect_timeout);
    }
  }

  stream.emplace(ioc, ctx);
  ++connections_opened;
  auto& tcp_layer = beast::get_lowest_layer(*stream);
  tcp_layer.expires_after(ep.connect_timeout);
  beast::error_code ec = runOp(ioc, [&](auto handler) { tcp_layer.async_connect(endpoints, std::move(handler)); });
  if (ec) {
    close();
    if (proxy) {
      return proxyError(ec == beast::error::timeout ? "cannot connect to the proxy: timed out after " +
                                                          std::to_string(ep.connect_timeout.count()) + " ms"
                                                    : "cannot connect to the proxy: " + ec.message());
    }
    return transportError("connect", ec, ep.connect_timeout);
  }
  beast::error_code ignored;
  tcp_layer.socket().set_option(tcp::no_delay(true), ignored);  // request/response: Nagle only adds latency
  if (proxy) {
    GW_TRY(openTunnel());
  }

  SSL* ssl = stream->native_handle();
  // SNI carries host names only (RFC 6066); an IP literal is still checked against the IP SANs.
  if (!url.host_is_ip && SSL_set_tlsext_host_name(ssl, url.host.c_str()) != 1) {
    close();
    return makeError(ErrorCode::Internal, "partner " + ep.id + ": handshake: cannot set SNI host name", ep.base_url);
  }
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  const int identity_set = url.host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str())
                                          : X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), url.host.size());
  if (identity_set != 1) {
    close();
    return makeError(ErrorCode::Internal, "partner " + ep.id + ": handshake: cannot set the expected peer identity",
                     ep.base_url);
  }

  tcp_layer.expires_after(ep.connect_timeout);
  ec = runOp(ioc, [&](auto handler) { stream->async_handshake(ssl::stream_base::client, std::move(handler)); });
  if (ec) {
    const long verify = SSL_get_verify_result(ssl);
    Error error = transportError("handshake", ec, ep.connect_timeout);
    if (verify != X509_V_OK) {
      error.message = "partner " + ep.id +
                      ": handshake: certificate verify failed: " + X509_verify_cert_error_string(verify) + " (" +
                      url.authority + ")";
      error.hint = "the partner's certificate is not trusted: check that ca_file ('" + ep.ca_file +
                   "') holds the CA that signed it and that the base_url host " + url.host + " is in its subjectAltName";
    } else if (error.code == ErrorCode::Unavailable) {
      error.hint = "check the partner's TLS settings (TLS 1.2 or later) and, if it requires one, the client certificate";
    }
    close();
    return error;
  }
  tcp_layer.expires_never();
  GW_LOG(Debug, Delivery, "partner_connected").kv("partner", ep.id).kv("tls", SSL_get_version(ssl));
  return ok();
}

Error FhirClient::Impl::proxyError(std::string message) const {
  return makeError(ErrorCode::Unavailable,
                   "partner " + ep.id + ": proxy " + proxy->authority + ": " + std::move(message) + " (tunnel to " +
                       url.authority + ")",
                   ep.proxy_url,
                   "check that the proxy " + proxy->authority +
                       " is up, reachable and allows CONNECT to the partner's port; the delivery will be retried");
}

// HTTP CONNECT (RFC 9110 §9.3.6) on the TCP connection to the proxy; on a 2xx the socket is a
// tunnel to the partner and the TLS handshake runs through it, end to end.
Status FhirClient::Impl::openTunnel() {
  auto& tcp_layer = beast::get_lowest_layer(*stream);
  http::request<http::empty_body> req{http::verb::connect, url.authority, 11};
  req.set(http::field::host, url.authority);
  req.set(http::field::user_agent, "fhir-gateway");
  if (!proxy->proxy_authorization.empty()) req.set(http::field::proxy_authorization, proxy->proxy_authorization);
  tcp_layer.expires_after(ep.connect_timeout);
  beast::error_code ec = runOp(ioc, [&](auto handler) { http::async_write(tcp_layer, req, std::move(handler)); });
  if (ec) {
    close();
    return proxyError("cannot send CONNECT: " + ec.message());
  }
  // The answer to CONNECT has no body (RFC 9110 §9.3.6): the parser must not wait for one.
  http::response_parser<http::empty_body> parser;
  parser.skip(true);
  parser.header_limit(16 * 1024);
  beast::flat_buffer proxy_buffer;
  ec = runOp(ioc, [&](auto handler) { http::async_read_header(tcp_layer, proxy_buffer, parser, std::move(handler)); });
  if (ec) {
    close();
    return proxyError(ec == beast::error::timeout
                          ? "no answer to CONNECT within " + std::to_string(ep.connect_timeout.count()) + " ms"
                          : "no answer to CONNECT: " + ec.message());
  }
  const unsigned status = parser.get().result_int();
  if (status / 100 != 2) {
    close();
    Error error = proxyError("refused the tunnel: " + std::to_string(status) + " " + std::string(parser.get().reason()));
    // 407 is the standard answer; some proxies (tinyproxy's BasicAuth) answer a CONNECT with 401.
    if (status == 407 || status == 401) {
      error.hint = ep.proxy_auth_file.empty()
                       ? "the proxy requires authentication: set proxy_auth_file to a file holding user:password"
                       : "the proxy refused the credentials in proxy_auth_file ('" + ep.proxy_auth_file + "')";
    } else if (status == 403) {
      error.hint = "the proxy forbids CONNECT to " + url.authority + ": ask its operators to allow that host and port";
    }
    return error;
  }
  if (proxy_buffer.size() != 0) {
    close();
    return proxyError("sent data after its CONNECT answer, before the TLS handshake");
  }
  GW_LOG(Debug, Delivery, "proxy_tunnel_open").kv("partner", ep.id).kv("proxy", proxy->authority);
  return ok();
}

Result<HttpResult> FhirClient::Impl::exchange(http::request<http::string_body>& req, bool& closed_before_response) {
  closed_before_response = false;
  auto& tcp_layer = beast::get_lowest_layer(*stream);
  tcp_layer.expires_after(ep.request_timeout);  // one deadline for write and read together
  beast::error_code ec = runOp(ioc, [&](auto handler) { http::async_write(*stream, req, std::move(handler)); });
  if (ec) {
    closed_before_response = closedByPeer(ec);
    close();
    return transportError("write", ec, ep.request_timeout);
  }

  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBody);
  parser.header_limit(kMaxResponseHeader);
  ec = runOp(ioc, [&](auto handler) { http::async_read(*stream, buffer, parser, std::move(handler)); });
  if (ec) {
    closed_before_response = closedByPeer(ec) && !parser.got_some() && buffer.size() == 0;
    close();
    if (ec == http::error::body_limit) {
      return makeError(ErrorCode::PayloadTooLarge,
                       "partner " + ep.id + ": read: response body exceeds " +
                           std::to_string(kMaxResponseBody / (1024 * 1024)) + " MiB",
                       ep.base_url, "the partner's reply is not a plausible FHIR response; check the partner");
    }
    return transportError("read", ec, ep.request_timeout);
  }
  tcp_layer.expires_never();

  auto& res = parser.get();
  HttpResult out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    auto [it, inserted] = out.headers.emplace(lower(field.name_string()), std::string(field.value()));
    if (!inserted) {
      it->second += ", ";
      it->second += field.value();
    }
  }
  const bool keep_alive = res.keep_alive();
  out.body = std::move(res.body());
  if (!keep_alive) close();
  return out;
}

Result<HttpResult> FhirClient::Impl::send(http::request<http::string_body>& req) {
  const auto start = std::chrono::steady_clock::now();
  const bool reused = stream.has_value();  // only a connection that already served a response stays open
  bool reconnected = false;
  auto result = [&]() -> Result<HttpResult> {
    if (!stream) {
      GW_TRY(connect());
    }
    bool closed_before_response = false;
    auto r = exchange(req, closed_before_response);
    if (!r && reused && closed_before_response) {
      // The partner dropped an idle keep-alive connection; nothing of ours was answered, so
      // send once more on a fresh connection. A fresh connection failing is reported as is.
      GW_LOG(Debug, Delivery, "partner_stale_connection").kv("partner", ep.id);
      reconnected = true;
      GW_TRY(connect());
      r = exchange(req, closed_before_response);
    }
    return r;
  }();
  const auto duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  const std::string_view method = req.method_string();
  if (result) {
    GW_LOG(Info, Delivery, "partner_response")
        .kv("partner", ep.id)
        .kv("method", method)
        .kv("status", result.value().status)
        .kv("duration_ms", duration_ms)
        .kv("reconnected", reconnected ? "true" : "false");
  } else {
    GW_LOG(Warn, Delivery, "partner_request_failed")
        .kv("partner", ep.id)
        .kv("method", method)
        .kv("code", errorCodeName(result.error().code))
        .kv("error", result.error().message)
        .kv("duration_ms", duration_ms);
  }
  return result;
}

http::request<http::string_body> FhirClient::Impl::makeRequest(http::verb verb, std::string target) const {
  http::request<http::string_body> req{verb, target.empty() ? "/" : target, 11};
  req.set(http::field::host, url.host_header);
  req.set(http::field::user_agent, kUserAgent);
  req.set(http::field::accept, kFhirJson);
  req.keep_alive(true);
  return req;
}

FhirClient::FhirClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FhirClient::~FhirClient() {
  if (impl_) impl_->close();
}

Result<std::unique_ptr<FhirClient>> FhirClient::create(PartnerEndpoint endpoint,
                                                       std::unique_ptr<CredentialSource> credentials) {
  if (endpoint.id.empty()) {
    return makeError(ErrorCode::Config, "partner endpoint has no id", "id", "give every partner a unique id");
  }
  GW_TRY(auto url, parseBaseUrl(endpoint));
  if (credentials == nullptr) credentials = noCredential();
  if (endpoint.connect_timeout.count() <= 0 || endpoint.request_timeout.count() <= 0) {
    return configError(endpoint, "connect_timeout", "connect_timeout and request_timeout must be positive",
                       "use milliseconds greater than zero");
  }
  GW_TRY(auto proxy, parseProxy(endpoint));
  auto impl = std::make_unique<Impl>(std::move(endpoint), std::move(url), std::move(credentials));
  impl->proxy = std::move(proxy);
  GW_TRY(impl->loadTls());
  return std::unique_ptr<FhirClient>(new FhirClient(std::move(impl)));
}

Result<HttpResult> FhirClient::postBundle(std::string_view bundle_json) {
  auto req = impl_->makeRequest(http::verb::post, impl_->url.path);
  req.set(http::field::content_type, kFhirJson);
  req.body() = std::string(bundle_json);
  req.prepare_payload();
  return impl_->sendWithCredential(req);
}

Result<HttpResult> FhirClient::write(const FhirWrite& write) {
  const auto verb = http::string_to_verb(write.method);
  if (verb != http::verb::put && verb != http::verb::post && verb != http::verb::delete_) {
    return makeError(ErrorCode::Internal, "unsupported write method " + write.method, impl_->ep.id);
  }
  auto req = impl_->makeRequest(verb, impl_->url.path + write.path_suffix);
  if (!write.body.empty()) {
    req.set(http::field::content_type, kFhirJson);
    req.body() = write.body;
  }
  if (!write.if_none_exist.empty()) req.set("If-None-Exist", write.if_none_exist);
  req.prepare_payload();
  return impl_->sendWithCredential(req);
}

Result<HttpResult> FhirClient::readMetadata() {
  auto req = impl_->makeRequest(http::verb::get, impl_->url.path + "/metadata");
  return impl_->sendWithCredential(req);
}

Result<HttpResult> FhirClient::Impl::sendWithCredential(http::request<http::string_body>& req) {
  GW_TRY(auto authorization, credentials->authorization());
  if (authorization) req.set(http::field::authorization, *authorization);
  auto result = send(req);
  // A refused credential is not offered again (an OAuth source fetches a new token).
  if (result && result.value().status == 401) {
    credentials->rejected();
    if (credentials->renewable()) {
      // Once only: a fresh token refused too is the partner's answer.
      GW_LOG(Info, Delivery, "credential_refused").kv("partner", ep.id).kv("credential", credentials->kind());
      GW_TRY(auto fresh, credentials->authorization());
      if (fresh) req.set(http::field::authorization, *fresh);
      else req.erase(http::field::authorization);
      result = send(req);
      if (result && result.value().status == 401) credentials->rejected();
    }
  }
  return result;
}

Result<HttpResult> FhirClient::request(const OutgoingRequest& request) {
  const auto verb = http::string_to_verb(request.method);
  if (verb != http::verb::get && verb != http::verb::post) {
    return makeError(ErrorCode::Internal, "unsupported method " + request.method, impl_->ep.id);
  }
  auto req = impl_->makeRequest(verb, impl_->url.path + request.path_suffix);
  req.set(http::field::accept, request.accept);
  if (!request.content_type.empty()) req.set(http::field::content_type, request.content_type);
  if (!request.authorization.empty()) req.set(http::field::authorization, request.authorization);
  req.body() = request.body;
  if (verb == http::verb::post) req.prepare_payload();
  return impl_->send(req);
}

const PartnerEndpoint& FhirClient::endpoint() const { return impl_->ep; }
int FhirClient::connectionsOpened() const { return impl_->connections_opened; }

}  // namespace gw::delivery
