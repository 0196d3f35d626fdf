// Copying a store out of and into SQLite (`fhir-gateway store migrate`): rows of copiedTables()
// read in key order and inserted as they are.
#include <Poco/Data/Statement.h>

#include "store/sqlite_backend.hpp"

namespace gw::store::sqlite {
namespace {

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Session;
using Poco::Data::Statement;

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 0;
}

std::string unhex(const std::string& hex) {
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<char>(hexValue(hex[2 * i]) << 4 | hexValue(hex[2 * i + 1]));
  return out;
}

std::string keyList(const CopyTable& table) {
  std::string keys;
  for (std::size_t k = 0; k < table.key_columns; ++k) keys += (k == 0 ? "" : ", ") + std::string(table.columns[k].name);
  return keys;
}

}  // namespace

std::vector<CopyRow> selectCopyRows(Session& s, const CopyTable& table, const CopyRow* after, int limit) {
  if (after == nullptr && table.name == copiedTables().front().name) {
    // Rows of an older schema still holding clear identifiers would be copied as if keyed.
    Poco::Int64 due = 0;
    s << "SELECT COUNT(*) FROM keyed_conversions_due", into(due), now;
    if (due > 0) {
      throw Poco::DataException(
          "the database still holds identifiers in clear (an older gateway's): start this version of the gateway on "
          "it once, which converts them, then copy it");
    }
  }
  // Bytes columns are read as hex(): RecordSet reads a column by its declared type, and payload
  // columns are declared TEXT while holding BLOB envelopes (which may hold zero bytes).
  std::string sql = "SELECT ";
  for (std::size_t c = 0; c < table.columns.size(); ++c) {
    const auto& col = table.columns[c];
    sql += c == 0 ? "" : ", ";
    sql += col.kind == CopyKind::Bytes ? "hex(" + std::string(col.name) + ")" : std::string(col.name);
  }
  sql += " FROM " + std::string(table.name);
  const std::string keys = keyList(table);
  if (after) {
    sql += " WHERE (" + keys + ") > (";
    for (std::size_t k = 0; k < table.key_columns; ++k) sql += k == 0 ? "?" : ", ?";
    sql += ")";
  }
  sql += " ORDER BY " + keys + " LIMIT ?";
  Statement q(s);
  q << sql;
  if (after) {
    for (std::size_t k = 0; k < table.key_columns; ++k) {
      if (table.columns[k].kind == CopyKind::Int) {
        q, bind(static_cast<Poco::Int64>((*after)[k].number));
      } else {
        q, bind((*after)[k].text);
      }
    }
  }
  q, bind(limit);
  q.execute();
  RecordSet rs(q);
  std::vector<CopyRow> rows(rs.rowCount());
  for (std::size_t r = 0; r < rs.rowCount(); ++r) {
    auto& row = rows[r];
    row.resize(table.columns.size());
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      auto& v = row[c];
      if (rs.value(c, r).isEmpty()) {
        v.null = table.columns[c].nullable;
        continue;
      }
      switch (table.columns[c].kind) {
        case CopyKind::Int: v.number = i64(rs, c, r); break;
        case CopyKind::Text: v.text = str(rs, c, r); break;
        case CopyKind::Bytes: v.text = unhex(str(rs, c, r)); break;
      }
    }
  }
  return rows;
}

void insertCopyRows(Session& s, const CopyTable& table, const std::vector<CopyRow>& rows) {
  // Copied rows come from a store with lookup keys: a new database's pending conversion (migration
  // 5 leaves one, done at the store's first open) must not convert them again.
  s << "DELETE FROM keyed_conversions_due", now;
  std::string columns;
  for (std::size_t c = 0; c < table.columns.size(); ++c)
    columns += (c == 0 ? "" : ", ") + std::string(table.columns[c].name);
  for (const auto& row : rows) {
    std::string values;
    for (std::size_t c = 0; c < table.columns.size(); ++c)
      values += std::string(c == 0 ? "" : ",") + (row[c].null ? "NULL" : "?");
    Statement insert(s);
    insert << "INSERT INTO " + std::string(table.name) + "(" + columns + ") VALUES(" + values + ")";
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      const auto& v = row[c];
      if (v.null) continue;
      switch (table.columns[c].kind) {
        case CopyKind::Int: insert, bind(static_cast<Poco::Int64>(v.number)); break;
        case CopyKind::Text: insert, bind(v.text); break;
        case CopyKind::Bytes:
          // An outbox item without an outcome holds '' (text), as the writer stores it.
          if (v.text.empty() && table.name == "outbox") {
            insert, bind(std::string());
          } else {
            insert, bind(toBlob(v.text));
          }
          break;
      }
    }
    insert.execute();
  }
}

}  // namespace gw::store::sqlite
