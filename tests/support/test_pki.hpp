#pragma once
// The development PKI for tests: certs/make-dev-certs.sh run into the build tree
// (<dir of the test binary>/test-pki), reused for 30 days. ctest starts a test binary once per
// test, so making it per process would cost a second each. It is made in a temporary folder and
// renamed into place, so parallel test processes never see half of it. No key is committed.
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace gw::test {

/// Folder holding every file certs/make-dev-certs.sh writes (ca.crt, server.*, partner.*,
/// client.* (CN=clinic-c1), client-c2.*, revoked-client.* with ca-crl.pem (the CA's CRL listing
/// it), gateway-client.*, expired-client.*, rogue-ca.*, rogue-client.*, rogue-server.*,
/// other-host.*, dev-master.key). Keys are mode 0600. Throws std::runtime_error if the script fails.
const std::string& devPkiDir();

/// devPkiDir() + "/" + name, e.g. devPkiFile("client.crt").
std::string devPkiFile(std::string_view name);

/// Writes to `path` a PEM CRL issued by the development PKI's `ca` ("ca" or "rogue-ca") that
/// revokes `revoked` (certificate names such as "client-c2"), last updated an hour ago and next
/// updated `next_update` from now (negative: an expired CRL). Throws std::runtime_error on failure.
void writeDevCrl(const std::string& path, std::string_view ca, const std::vector<std::string>& revoked,
                 std::chrono::seconds next_update);

/// Lowercase hex SHA-256 of the DER form of a development certificate ("client", "client-c2", ...).
std::string devCertFingerprint(std::string_view name);

}  // namespace gw::test
