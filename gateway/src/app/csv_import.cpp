#include "app/csv_import.hpp"

#include <algorithm>
#include <future>

#include "app/consent_registry_loader.hpp"
#include "app/keys.hpp"
#include "app/settings.hpp"
#include "app/views.hpp"
#include "common/clock.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "ingest/group_committer.hpp"
#include "ingest/ingest_service.hpp"
#include "mapping/support.hpp"
#include "store/store.hpp"

namespace gw::app {

Result<ImportOutcome> importCsv(const config::GatewayConfig& config, std::string_view mapper_arg,
                                const std::filesystem::path& csv_file,
                                const std::function<void(std::size_t done, std::size_t total)>& progress) {
  // Resolve the mapper first: a typo should not open (or create) the database.
  std::unique_ptr<mapping::CsvInputMapper> file_mapper;
  std::unique_ptr<mapping::CsvMapperSet> named;
  const mapping::CsvInputMapper* mapper = nullptr;
  const std::string arg(mapper_arg);
  std::error_code ec;
  if (arg.ends_with(mapping::CsvInputMapper::kSuffix) || std::filesystem::is_regular_file(arg, ec)) {
    GW_TRY(auto loaded, mapping::CsvInputMapper::loadFile(arg));
    file_mapper = std::make_unique<mapping::CsvInputMapper>(std::move(loaded));
    mapper = file_mapper.get();
  } else {
    if (!config.mapping.csv_mappers_dir.empty()) {
      GW_TRY(auto set, mapping::CsvMapperSet::loadDirectory(config.mapping.csv_mappers_dir));
      named = std::make_unique<mapping::CsvMapperSet>(std::move(set));
    } else {
      named = std::make_unique<mapping::CsvMapperSet>();
    }
    mapper = named->find(arg);
    if (mapper == nullptr) {
      std::string available;
      for (const auto& n : named->names()) available += (available.empty() ? "" : ", ") + n;
      return makeError(ErrorCode::BadRequest, "unknown CSV mapper " + mapping::quoteCode(arg), "--mapper",
                       available.empty() ? "give a *.csv-mapper.json file, or set mapping.csv_mappers_dir in the config"
                                         : "available: " + available + "; or give a *.csv-mapper.json file");
    }
  }
  GW_TRY(auto csv_text, mapping::readTextFile(csv_file));

  auto batch = ingest::readCsvWith(*mapper, csv_text, ingest::IngestService::kMaxRecordsPerRequest);
  if (!batch) {
    // Nothing of a text we cannot read is used: answered as POST /v1/records would answer it.
    ingest::BatchResult unreadable;
    unreadable.failure = batch.error();
    return ImportOutcome{batchHttpStatus(unreadable), ingest::batchResultJson(unreadable), false};
  }

  GW_TRY(auto rules, loadConfiguredRuleSet(config));
  GW_TRY(auto store, openConfiguredStore(config, 2));
  GW_TRY(auto record_key_secret, store->deploymentSecret("record-key"));
  // Decisions need the consents: the same registry the gateway would load. Consents imported
  // here are settled (queued and held items) by the gateway at its next start.
  consent::ConsentRegistry registry(clinicZones(config));
  GW_TRY(auto unreconciled, loadConsentRegistry(*store, registry));
  (void)unreconciled;
  SystemClock clock;
  const auto settings = ingestSettings(config, std::move(record_key_secret));
  const auto formats = ingest::InputFormatRegistry::builtins();
  ImportOutcome outcome;
  {
    ingest::GroupCommitter committer(*store, clock);
    const ingest::IngestService service(ingest::IngestParts{settings, rules, formats, committer, *store, registry});
    // The operator running import has the config file and the database: every configured clinic.
    const ingest::Submitter submitter{"cli-import", {"*"}};
    // In chunks, so progress can be shown; each chunk's results are numbered on from the last.
    constexpr std::size_t kChunk = 500;
    auto all = std::move(batch).value();
    const std::size_t total = all.records.size();
    ingest::BatchResult result;
    if (progress) progress(0, total);
    for (std::size_t start = 0; start < total || (total == 0 && start == 0); start += kChunk) {
      ingest::InputBatch chunk;
      chunk.storage = all.storage;
      const std::size_t end = std::min(total, start + kChunk);
      chunk.records.assign(all.records.begin() + static_cast<std::ptrdiff_t>(start),
                           all.records.begin() + static_cast<std::ptrdiff_t>(end));
      std::promise<ingest::BatchResult> promise;
      service.ingestBatch(std::move(chunk), submitter, [&](ingest::BatchResult r) { promise.set_value(std::move(r)); });
      auto part = promise.get_future().get();
      if (part.failure) {
        result.failure = part.failure;  // the database failed: stop here (earlier chunks are stored)
        break;
      }
      for (auto& r : part.records) {
        r.index += start;
        result.records.push_back(std::move(r));
      }
      if (progress) progress(end, total);
      if (total == 0) break;
    }
    outcome.status = batchHttpStatus(result);
    outcome.body = ingest::batchResultJson(result);
    outcome.all_accepted = !result.failure && result.rejected() == 0 && !result.records.empty();
  }  // the committer drains before the store closes
  GW_LOG(Info, Ingest, "csv_import_done")
      .kv("status", outcome.status)
      .kv("all_accepted", outcome.all_accepted ? "true" : "false");
  return outcome;
}

}  // namespace gw::app
