#include "ingest/batch_result.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "common/json.hpp"

namespace gw::ingest {

std::size_t BatchResult::accepted() const {
  return static_cast<std::size_t>(
      std::count_if(records.begin(), records.end(), [](const RecordResult& r) { return r.accepted; }));
}

std::string batchResultJson(const BatchResult& result) {
  if (result.failure) return json::operationOutcome(*result.failure);
  using json::writeString;
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("results");
  w.StartArray();
  for (const auto& r : result.records) {
    w.StartObject();
    w.Key("index");
    w.Uint64(r.index);
    if (r.line != 0) {
      w.Key("line");
      w.Uint64(r.line);
    }
    w.Key("record_id");
    writeString(w, r.record_id);
    if (!r.accepted) {
      w.Key("status");
      w.String("rejected");
      w.Key("errors");
      w.StartArray();
      for (const auto& e : r.errors) {
        w.StartObject();
        w.Key("path");
        writeString(w, e.path);
        w.Key("reason");
        writeString(w, e.reason);
        w.EndObject();
      }
      w.EndArray();
    } else {
      w.Key("status");
      w.String("accepted");
      w.Key("disposition");
      writeString(w, store::dispositionName(r.disposition));
      w.Key("version");
      w.Int(r.version);
      w.Key("state");
      writeString(w, store::recordStateName(r.state));
      w.Key("record_key");
      writeString(w, r.record_key);
      if (!r.invalid_outcome.empty()) {
        w.Key("outcome");
        w.RawValue(r.invalid_outcome.data(), r.invalid_outcome.size(), rapidjson::kObjectType);
      }
      w.Key("resources");
      w.StartArray();
      for (const auto& ref : r.resources) writeString(w, ref);
      w.EndArray();
      w.Key("queued_for");
      w.StartArray();
      for (const auto& id : r.queued_for) writeString(w, id);
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("accepted");
  w.Uint64(result.accepted());
  w.Key("rejected");
  w.Uint64(result.rejected());
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

}  // namespace gw::ingest
