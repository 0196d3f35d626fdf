#pragma once
// The development PKI for tests: certs/make-dev-certs.sh run once per test process into a
// private temporary directory, removed when the process exits. No key is ever committed.
#include <string>
#include <string_view>

namespace gw::test {

/// Directory holding ca.crt, server.crt/key, client.crt/key, expired-client.*, rogue-ca.crt,
/// rogue-client.* (see certs/make-dev-certs.sh). Throws std::runtime_error if the script fails.
const std::string& devPkiDir();

/// devPkiDir() + "/" + name, e.g. devPkiFile("client.crt").
std::string devPkiFile(std::string_view name);

}  // namespace gw::test
