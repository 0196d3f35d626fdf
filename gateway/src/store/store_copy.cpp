#include "store/store_copy.hpp"

#include <algorithm>

namespace gw::store {

Result<CopyReport> copyStore(StoreBackend& from, StoreBackend& to, int chunk) {
  {
    GW_TRY(auto target, to.read());
    for (const auto& table : copiedTables()) {
      GW_TRY(auto n, target->countRows(table));
      if (n > 0) {
        return makeError(ErrorCode::Config,
                         "the target database already holds a store (" + std::to_string(n) + " rows in " +
                             std::string(table.name) + ")",
                         to.location(), "migrate into a new, empty database (the schema is made on first open)");
      }
    }
  }
  CopyReport report;
  {
    GW_TRY(auto source, from.read());
    GW_TRY(auto tx, WriteTransaction::begin(to));
    for (const auto& table : copiedTables()) {
      std::int64_t copied = 0;
      CopyRow last;
      for (;;) {
        GW_TRY(auto rows, source->copyRows(table, copied == 0 ? nullptr : &last, chunk));
        if (rows.empty()) break;
        GW_TRY(tx->insertCopiedRows(table, rows));
        copied += static_cast<std::int64_t>(rows.size());
        last = std::move(rows.back());
        if (static_cast<int>(rows.size()) < chunk) break;
      }
      report.tables.push_back({std::string(table.name), copied});
      report.rows += copied;
    }
    GW_TRY(tx.commit());
  }
  // Both sides counted again, after the commit: what the target holds now is what the source holds.
  GW_TRY(auto source, from.read());
  GW_TRY(auto target, to.read());
  for (const auto& table : report.tables) {
    const auto& t = *std::find_if(copiedTables().begin(), copiedTables().end(),
                                  [&](const CopyTable& c) { return c.name == table.name; });
    GW_TRY(auto in_source, source->countRows(t));
    GW_TRY(auto in_target, target->countRows(t));
    if (in_source != table.rows || in_target != table.rows) {
      return makeError(ErrorCode::Storage,
                       "after the copy " + table.name + " holds " + std::to_string(in_target) + " rows in " + to.location() +
                           " and " + std::to_string(in_source) + " in " + from.location() + " (" +
                           std::to_string(table.rows) + " copied)",
                       to.location(), "the source changed during the copy: stop every gateway using it and start again");
    }
  }
  return report;
}

}  // namespace gw::store
