#pragma once
// Several gateway instances on one database (docs/architecture.md §5.3): the versions an instance
// reports about itself (the build, its configuration, its mapping set), and the list of instances
// with the ones that run something else than the others flagged (GET /v1/admin/instances,
// `fhir-gateway instances`).
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "config/gateway_config.hpp"
#include "store/store.hpp"

namespace gw::app {

/// The build's version (the project version CMake gives).
std::string_view binaryVersion();

/// "sha256:<16 hex>" of the configuration as `check-config` prints it (secrets redacted; token
/// hashes hashed in), without what may differ from one instance to the next by design:
/// instance_id, where it listens (server.address, server.port, server.metrics_listen,
/// console.listen.address and port) and file and folder paths (*_file, *_dir, *_path, ...: where
/// this host keeps things; what the mapping files hold is the mappers version). Equal on
/// instances that behave alike.
std::string configVersion(const config::GatewayConfig& config);

/// "sha256:<16 hex>" of every file of the mapping set's folders (mapping.format_dir with its
/// schemas, mappers and golden cases, mapping.profiles_dir, mapping.csv_mappers_dir): names and
/// bytes, in name order. What a reload reads; equal on instances that map alike.
Result<std::string> mappingSetVersion(const config::Mapping& mapping);

/// How often an instance writes its heartbeat (last_seen_at).
inline constexpr std::chrono::seconds kInstanceHeartbeat{10};
/// An instance whose heartbeat is older than this (and that did not stop cleanly) is "stale":
/// killed, hung, or cut off from the database.
inline constexpr std::chrono::seconds kInstanceStaleAfter{35};

struct InstanceView {
  store::InstanceRow row;
  std::string state;  // "running", "stale" (no heartbeat for kInstanceStaleAfter), "stopped"
  /// What sets it apart from the other running instances: "binary_version", "config_version",
  /// "mappers_version" (its value is not the one most running instances have; with a tie, every
  /// running instance is flagged), "last_reload_failed" (its last reload was refused, so it kept
  /// the set it ran before).
  std::vector<std::string> differs;
};

/// The rows with their state and flags, in instance id order.
std::vector<InstanceView> describeInstances(std::vector<store::InstanceRow> rows, SystemTime now);

/// GET /v1/admin/instances: {"self": id, "consistent": bool, "instances": [...]}; consistent is
/// true when no running instance is flagged.
std::string instancesJson(const std::vector<InstanceView>& instances, std::string_view self);

/// `fhir-gateway instances`: one line per instance, flagged ones marked.
std::string instancesText(const std::vector<InstanceView>& instances);

/// `fhir-gateway instances --config FILE [--json]`: the instances recorded in the configured
/// database, as text or as GET /v1/admin/instances answers. `consistent` is set to whether no
/// running instance is flagged.
Result<std::string> instancesCommand(const config::GatewayConfig& config, bool json, bool& consistent);

}  // namespace gw::app
