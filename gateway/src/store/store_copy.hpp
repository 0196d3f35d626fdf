#pragma once
// Copying a whole store from one database to another (`fhir-gateway store migrate`): every row of
// every table (store_backend.hpp copiedTables), values as they are, so sealed payloads stay
// sealed under the same data keys (and those stay wrapped by the same master key).
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "store/store_backend.hpp"

namespace gw::store {

struct CopiedTable {
  std::string name;
  std::int64_t rows = 0;
};

struct CopyReport {
  std::vector<CopiedTable> tables;  // in copy order, with the rows each holds in both databases
  std::int64_t rows = 0;
};

/// Copies every table of `from` into `to`, which must hold no store yet (every copied table
/// empty), in one write transaction on `to` (nothing is left behind when it fails), `chunk` rows
/// at a time. Then counts each table on both sides: a difference is an error naming the table.
/// `from` should not change meanwhile (stop the gateways using it).
Result<CopyReport> copyStore(StoreBackend& from, StoreBackend& to, int chunk = 1000);

}  // namespace gw::store
