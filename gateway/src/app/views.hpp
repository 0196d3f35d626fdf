#pragma once
// The JSON the gateway's routes answer with, and the HTTP status of an ingest result: the one
// place that turns domain results into what a client reads.
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "http/request.hpp"
#include "ingest/batch_result.hpp"
#include "store/store.hpp"

namespace gw::app {

/// What a reload loaded (and, on success, put in place).
struct ReloadSummary {
  std::size_t schemas = 0;
  std::size_t mappers = 0;
  std::size_t profiles = 0;
  std::size_t golden_cases = 0;  // golden cases the new set passed before it was put in place
  bool coalesced = false;        // answered by a reload that began after this request was made
  std::string instance_id;       // the instance that reloaded
  std::string mappers_version;   // of the set now running (app/instances.hpp mappingSetVersion)
  bool announced = false;        // the other instances on the database were told to reload
};

/// 202 when some record was accepted, 422 when every one was rejected, else the failure's status
/// (400 unreadable, 413 too many records, 503 the database failed).
int batchHttpStatus(const ingest::BatchResult& result);
http::Response batchResponse(const ingest::BatchResult& result);

/// Why a record went, or did not go, to one partner, in words a clinic may read (GET
/// /v1/records/{id}): no other patient's data and nothing of the consent's content, only which
/// rule held it. status: "delivered", "queued", "retrying", "failed", "held".
struct PartnerWhy {
  std::string partner_id;
  std::string status;
  std::string why;  // e.g. "held: no consent on file for this partner", "held: partner paused"
};

/// GET /v1/records/{id}: state, resources and deliveries of one record (ids, never content).
/// `partners`: per configured partner why the record went or not (app/operations.hpp
/// explainDeliveries), as "partners": [{"partner","status","why"}]; left out when empty.
std::string recordStatusJson(const store::RecordStatus& status, std::string_view record_key_secret,
                             const std::vector<PartnerWhy>& partners = {});

/// GET /v1/consents: a patient's consents with every version, newest first within each.
/// `time_zone_of` names a clinic's configured zone (its consents' days are local days there).
std::string consentsJson(std::string_view patient_key, const std::vector<store::StoredConsent>& stored,
                         const std::function<std::string(std::string_view clinic)>& time_zone_of = {});

/// POST /v1/admin/reload.
std::string reloadSummaryJson(const ReloadSummary& summary);

}  // namespace gw::app
