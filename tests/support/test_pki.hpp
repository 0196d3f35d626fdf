#pragma once
// The development PKI for tests: certs/make-dev-certs.sh run into the build tree
// (<dir of the test binary>/test-pki), reused for 30 days. ctest starts a test binary once per
// test, so making it per process would cost a second each. It is made in a temporary folder and
// renamed into place, so parallel test processes never see half of it. No key is committed.
#include <string>
#include <string_view>

namespace gw::test {

/// Folder holding every file certs/make-dev-certs.sh writes (ca.crt, server.*, partner.*,
/// client.* (CN=clinic-c1), client-c2.*, revoked-client.* with ca-crl.pem (the CA's CRL listing
/// it), gateway-client.*, expired-client.*, rogue-ca.*, rogue-client.*, rogue-server.*,
/// other-host.*, dev-master.key). Keys are mode 0600. Throws std::runtime_error if the script fails.
const std::string& devPkiDir();

/// devPkiDir() + "/" + name, e.g. devPkiFile("client.crt").
std::string devPkiFile(std::string_view name);

}  // namespace gw::test
