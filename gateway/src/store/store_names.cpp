// The names of the store's vocabularies: the text the database stores and the API shows.
#include "store/store.hpp"

namespace gw::store {

int Retention::daysFor(privacy::DataClass c) const {
  switch (c) {
    case privacy::DataClass::General: return general_days;
    case privacy::DataClass::Sud: return sud_days;
    case privacy::DataClass::Mh: return mh_days;
  }
  return sud_days;
}

std::string_view recordStateName(RecordState s) {
  switch (s) {
    case RecordState::Received: return "received";
    case RecordState::Mapped: return "mapped";
    case RecordState::Unmapped: return "unmapped";
    case RecordState::Invalid: return "invalid";
  }
  return "received";
}

std::optional<RecordState> parseRecordState(std::string_view s) {
  if (s == "received") return RecordState::Received;
  if (s == "mapped") return RecordState::Mapped;
  if (s == "unmapped") return RecordState::Unmapped;
  if (s == "invalid") return RecordState::Invalid;
  return std::nullopt;
}

std::string_view outboxStateName(OutboxState s) {
  switch (s) {
    case OutboxState::Queued: return "queued";
    case OutboxState::Retrying: return "retrying";
    case OutboxState::Delivered: return "delivered";
    case OutboxState::Dead: return "dead";
    case OutboxState::Superseded: return "superseded";
    case OutboxState::Cancelled: return "cancelled";
  }
  return "queued";
}

std::optional<OutboxState> parseOutboxState(std::string_view s) {
  if (s == "queued") return OutboxState::Queued;
  if (s == "retrying") return OutboxState::Retrying;
  if (s == "delivered") return OutboxState::Delivered;
  if (s == "dead") return OutboxState::Dead;
  if (s == "superseded") return OutboxState::Superseded;
  if (s == "cancelled") return OutboxState::Cancelled;
  return std::nullopt;
}

std::string_view dispositionName(IngestDisposition d) {
  switch (d) {
    case IngestDisposition::Created: return "created";
    case IngestDisposition::NewVersion: return "new-version";
    case IngestDisposition::Unchanged: return "unchanged";
  }
  return "created";
}

}  // namespace gw::store
