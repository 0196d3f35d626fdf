#include "http/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <array>
#include <fstream>
#include <memory>
#include <vector>

#include "common/crypto.hpp"
#include "common/log.hpp"

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

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using CrlPtr = std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)>;
using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

std::string printed(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return size > 0 ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

std::string printed(const ASN1_TIME* time) {
  BioPtr bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio || ASN1_TIME_print(bio.get(), time) != 1) return "?";
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return size > 0 ? std::string(data, static_cast<std::size_t>(size)) : std::string("?");
}

// True at the end of a PEM file: the error OpenSSL queues when no further object starts.
bool isEndOfPem() {
  const unsigned long code = ERR_peek_last_error();
  return ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE;
}

std::vector<X509Ptr> readCertificates(const std::string& file) {
  std::vector<X509Ptr> certs;
  BioPtr bio(BIO_new_file(file.c_str(), "r"), &BIO_free);
  while (bio) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (cert == nullptr) break;
    certs.emplace_back(cert, &X509_free);
  }
  ERR_clear_error();
  return certs;
}

// Adds every CRL of client_crl_file to the context's store and turns revocation checking on for
// client certificates. Each CRL must be signed by a CA of client_ca_file and not be past its
// next update (OpenSSL would then refuse every certificate of that CA with "CRL has expired").
Status loadClientCrls(SSL_CTX* ctx, const ServerOptions& options) {
  const std::string& file = options.client_crl_file;
  GW_TRY(checkReadable(file, "client CRL", "client_crl_file"));
  const std::vector<X509Ptr> cas = readCertificates(options.client_ca_file);
  std::vector<bool> ca_has_crl(cas.size(), false);
  BioPtr bio(BIO_new_file(file.c_str(), "r"), &BIO_free);
  if (!bio) {
    return makeError(ErrorCode::Config, "cannot open the client CRL file: " + takeOpenSslError(), file,
                     "check that client_crl_file names a PEM file readable by the gateway user");
  }
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int count = 0;
  ERR_clear_error();
  for (;;) {
    CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr), &X509_CRL_free);
    if (!crl) break;
    ++count;
    const std::string which = "CRL " + std::to_string(count) + " (issuer " + printed(X509_CRL_get_issuer(crl.get())) + ")";
    std::size_t issuer = cas.size();
    for (std::size_t i = 0; i < cas.size() && issuer == cas.size(); ++i) {
      if (X509_NAME_cmp(X509_get_subject_name(cas[i].get()), X509_CRL_get_issuer(crl.get())) == 0 &&
          X509_CRL_verify(crl.get(), X509_get0_pubkey(cas[i].get())) == 1) {
        issuer = i;
      }
    }
    ERR_clear_error();
    if (issuer == cas.size()) {
      return makeError(ErrorCode::Config, which + " is not signed by a CA of client_ca_file", file,
                       "put the CRL of the CA that issues the clinic certificates (" + options.client_ca_file +
                           ") in client_crl_file");
    }
    const ASN1_TIME* next_update = X509_CRL_get0_nextUpdate(crl.get());
    if (next_update != nullptr && X509_cmp_current_time(next_update) < 0) {
      return makeError(ErrorCode::Config,
                       which + " expired on " + printed(next_update) +
                           ": every client certificate of its CA would be refused",
                       file, "publish a fresh CRL from the CA (e.g. openssl ca -gencrl) and restart the gateway");
    }
    if (X509_STORE_add_crl(store, crl.get()) != 1) {
      return makeError(ErrorCode::Config, which + " could not be loaded: " + takeOpenSslError(), file,
                       "remove duplicate CRLs from client_crl_file");
    }
    ca_has_crl[issuer] = true;
  }
  if (!isEndOfPem()) {
    return makeError(ErrorCode::Config, "not a usable PEM CRL file: " + takeOpenSslError(), file,
                     "client_crl_file must hold PEM CRLs (-----BEGIN X509 CRL-----) of the client CAs");
  }
  ERR_clear_error();
  if (count == 0) {
    return makeError(ErrorCode::Config, "no CRL found", file,
                     "client_crl_file must hold PEM CRLs (-----BEGIN X509 CRL-----) of the client CAs");
  }
  // Checks the client certificate itself (not its intermediates) against its issuer's CRL.
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  for (std::size_t i = 0; i < cas.size(); ++i) {
    if (ca_has_crl[i]) continue;
    // OpenSSL refuses a certificate whose issuer has no CRL ("unable to get certificate CRL").
    GW_LOG(Warn, Http, "client_crl_missing")
        .kv("ca", printed(X509_get_subject_name(cas[i].get())))
        .kv("file", file)
        .kv("effect", "client certificates issued by this CA are refused until its CRL is added");
  }
  return ok();
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
    if (!options.client_crl_file.empty()) {
      GW_TRY(loadClientCrls(ctx, options));
    }
  } else {
    if (!options.client_crl_file.empty()) {
      return makeError(ErrorCode::Config, "a CRL checks client certificates, but client_cert is none",
                       options.client_crl_file, "set client_cert to required (or optional), or remove client_crl_file");
    }
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
  identity.subject = printed(name);
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
