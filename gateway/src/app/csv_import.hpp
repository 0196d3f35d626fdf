#pragma once
// CSV exports into the gateway without HTTP: `fhir-gateway import` converts a CSV file with a CSV
// input mapper and ingests the rows into the configured gateway's database through the same
// IngestService as POST /v1/records (schema, mapper, profiles, outbox), so a running gateway's
// delivery workers send them.
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "config/gateway_config.hpp"
#include "mapping/csv_input_mapper.hpp"

namespace gw::app {

struct ImportOutcome {
  int status = 0;    // as POST /v1/records would answer: 202 some accepted, 422 none, 400/413 unreadable
  std::string body;  // the per-record result JSON (or an OperationOutcome)
  bool all_accepted = false;
};

/// Imports `csv_file` with `mapper`: a path to a *.csv-mapper.json file (anything with a '/'
/// that exists as a file, or ending in .csv-mapper.json), else a name in mapping.csv_mappers_dir.
/// Errors (config, unknown mapper, unreadable file, database) are returned; per-row problems are in
/// the outcome's body.
/// `progress` (optional) is told the rows ingested so far of the total after each chunk of rows
/// (one commit each).
Result<ImportOutcome> importCsv(const config::GatewayConfig& config, std::string_view mapper,
                                const std::filesystem::path& csv_file,
                                const std::function<void(std::size_t done, std::size_t total)>& progress = {});

}  // namespace gw::app
