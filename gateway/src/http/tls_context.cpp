#include "http/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <array>
#include <fstream>
#include <memory>

#include "common/crypto.hpp"

namespace gw::http::detail {
namespace ssl = boost::asio::ssl;
namespace {

constexpr const char* kDevHint = "for development, make a PKI with certs/make-dev-certs.sh";

// A precise "cannot open" beats OpenSSL's "system lib" error for the common mistake.
Status checkReadable(const std::string& path, std::string_view what, std::string_view setting) {
  if (path.empty()) {
    return makeError(ErrorCode::Config, "no " + std::string(what) + " configured", std::string(setting),
                     "set " + std::string(setting) + " to a PEM file; " + kDevHint);
  }
  std::ifstream in(path);
  if (!in) {
    return makeError(ErrorCode::Config, "cannot read the " + std::string(what) + " file", path,
                     "check that " + std::string(setting) + " names an existing PEM file readable by the gateway user");
  }
  return ok();
}

std::string hex(const unsigned char* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

}  // namespace

std::string takeOpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return {};
  std::array<char, 256> buf{};
  ERR_error_string_n(code, buf.data(), buf.size());
  return buf.data();
}

Result<ssl::context> makeServerTlsContext(const ServerOptions& options) {
  ssl::context context(ssl::context::tls_server);
  SSL_CTX* ctx = context.native_handle();
  ERR_clear_error();

  // TLS 1.2 floor (also set as options for stacks that consult them), no compression (CRIME),
  // no renegotiation (client-initiated renegotiation is a DoS lever), our cipher order.
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_COMPRESSION |
                               SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_SINGLE_ECDH_USE);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1 ||
      SSL_CTX_set_ciphersuites(ctx, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256") != 1) {
    return makeError(ErrorCode::Internal, "OpenSSL rejected the built-in cipher list: " + takeOpenSslError());
  }

  GW_TRY(checkReadable(options.cert_file, "server certificate", "cert_file"));
  GW_TRY(checkReadable(options.key_file, "server private key", "key_file"));
  // Like the master key: a private key others can read is no longer private.
  GW_TRY(crypto::checkPrivateFile(options.key_file, "the server private key", "server.tls.key_file"));
  if (SSL_CTX_use_certificate_chain_file(ctx, options.cert_file.c_str()) != 1) {
    return makeError(ErrorCode::Config, "not a usable PEM certificate chain: " + takeOpenSslError(), options.cert_file,
                     "cert_file must hold the server certificate followed by its intermediates, PEM encoded");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      return makeError(ErrorCode::Config, "the private key does not belong to the server certificate", options.key_file,
                       "point key_file at the key that was used to request " + options.cert_file);
    }
    return makeError(ErrorCode::Config, "not a usable PEM private key: " + takeOpenSslError(), options.key_file,
                     "key_file must hold the unencrypted PEM private key of cert_file");
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return makeError(ErrorCode::Config, "the private key does not belong to the server certificate", options.key_file,
                     "point key_file at the key that was used to request " + options.cert_file);
  }

  if (options.client_cert != ClientCertMode::None) {
    GW_TRY(checkReadable(options.client_ca_file, "client CA bundle", "client_ca_file"));
    if (SSL_CTX_load_verify_locations(ctx, options.client_ca_file.c_str(), nullptr) != 1) {
      return makeError(ErrorCode::Config, "not a usable PEM CA bundle: " + takeOpenSslError(), options.client_ca_file,
                       "client_ca_file must hold the PEM certificates of the CAs that issue clinic client certificates");
    }
    // Tells clients which CAs we accept, so one with several certificates picks the right one.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.client_ca_file.c_str());
    if (names == nullptr) {
      return makeError(ErrorCode::Config, "no CA certificates found: " + takeOpenSslError(), options.client_ca_file,
                       "client_ca_file must hold at least one PEM CA certificate");
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    const int mode = options.client_cert == ClientCertMode::Required
                         ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                         : SSL_VERIFY_PEER;  // a presented certificate must still verify
    SSL_CTX_set_verify(ctx, mode, nullptr);
    SSL_CTX_set_verify_depth(ctx, 4);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  // Session resumption with client certificates needs a context id, or OpenSSL refuses it.
  static constexpr unsigned char kSessionContext[] = "fhir-gateway";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  ERR_clear_error();
  return context;
}

ClientIdentity peerIdentity(SSL* ssl) {
  ClientIdentity identity;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return identity;
  identity.verified = SSL_get_verify_result(ssl) == X509_V_OK;

  X509_NAME* name = X509_get_subject_name(cert);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (bio && X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) >= 0) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    if (size > 0) identity.subject.assign(data, static_cast<std::size_t>(size));
  }
  const int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index >= 0) {
    unsigned char* utf8 = nullptr;
    const int size = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index)));
    if (size > 0) identity.common_name.assign(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(size));
    OPENSSL_free(utf8);
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int md_size = 0;
  if (X509_digest(cert, EVP_sha256(), md.data(), &md_size) == 1) identity.fingerprint_sha256 = hex(md.data(), md_size);
  return identity;
}

std::string verifyFailure(SSL* ssl) {
  const long result = SSL_get_verify_result(ssl);
  if (result == X509_V_OK) return {};
  return X509_verify_cert_error_string(result);
}

}  // namespace gw::http::detail
