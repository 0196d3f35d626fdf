#pragma once
// A statement on SQLite's own handle, prepared once and re-run: the hot paths' statements
// (ingest's writes on the writer connection, its reads on the pooled readers). Poco::Data
// prepares a Statement's SQL again at every execute(); sqlite3_prepare_v2 was a fifth to a third
// of ingest's time. A failure throws the Poco exception Poco::Data would have thrown, so callers
// catch one kind and errors read as before.
#include <Poco/Data/SQLite/Utility.h>
#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace gw::store::sqlite {

class PreparedStatement {
 public:
  PreparedStatement(sqlite3* db, const char* sql) : db_(db) {
    const int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) Poco::Data::SQLite::Utility::throwException(db, rc);
  }
  ~PreparedStatement() { sqlite3_finalize(stmt_); }
  PreparedStatement(const PreparedStatement&) = delete;
  PreparedStatement& operator=(const PreparedStatement&) = delete;

  // The bound values are read when stepped, which follows at once (run, first, each): not copied.
  PreparedStatement& text(int i, std::string_view v) {
    // A null pointer would bind NULL: an empty view binds '' as Poco::Data bound an empty string.
    return check(
        sqlite3_bind_text(stmt_, i, v.data() == nullptr ? "" : v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
  }
  PreparedStatement& blob(int i, std::string_view v) {
    // Zero bytes still bind a BLOB (a null pointer would bind NULL).
    return check(
        sqlite3_bind_blob(stmt_, i, v.data() == nullptr ? "" : v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
  }
  PreparedStatement& i64(int i, std::int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }

  /// Runs a statement that returns no rows.
  void run() {
    const int rc = sqlite3_step(stmt_);
    finish(rc);
  }
  /// Runs a query and hands its first row (if any) to `read`, which reads it with the column
  /// helpers below. Reset at once: no read transaction outlives the call.
  template <class F>
  bool first(F&& read) {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) read(*this);
    finish(rc);
    return rc == SQLITE_ROW;
  }
  /// Runs a query and hands every row to `read`, in order.
  template <class F>
  void each(F&& read) {
    int rc;
    while ((rc = sqlite3_step(stmt_)) == SQLITE_ROW) read(*this);
    finish(rc);
  }

  std::string columnText(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
    return p == nullptr ? std::string() : std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c)));
  }
  // A BLOB column's bytes as they are (text would stop at a zero byte).
  std::string columnBlob(int c) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, c));
    return p == nullptr ? std::string() : std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c)));
  }
  std::int64_t columnInt(int c) const { return sqlite3_column_int64(stmt_, c); }

 private:
  void finish(int rc) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) Poco::Data::SQLite::Utility::throwException(db_, rc);
  }
  PreparedStatement& check(int rc) {
    if (rc != SQLITE_OK) {
      sqlite3_reset(stmt_);
      Poco::Data::SQLite::Utility::throwException(db_, rc);
    }
    return *this;
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace gw::store::sqlite
