#include "app/csv_import.hpp"

#include <future>

#include "app/consent_registry_loader.hpp"
#include "app/engineer_tools.hpp"
#include "app/keys.hpp"
#include "common/clock.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "ingest/group_committer.hpp"
#include "ingest/ingest_service.hpp"
#include "mapping/support.hpp"
#include "store/store.hpp"

namespace gw::app {

Result<std::unique_ptr<mapping::CsvMapperSet>> loadCsvMappers(const config::GatewayConfig& config) {
  if (config.mapping.csv_mappers_dir.empty()) return std::make_unique<mapping::CsvMapperSet>();
  GW_TRY(auto set, mapping::CsvMapperSet::loadDirectory(config.mapping.csv_mappers_dir));
  GW_LOG(Info, Mapping, "csv_mappers_loaded").kv("count", set.names().size());
  return std::make_unique<mapping::CsvMapperSet>(std::move(set));
}

Result<std::shared_ptr<const privacy::Classifier>> loadClassifier(const config::GatewayConfig& cfg) {
  GW_TRY(auto classifier, privacy::Classifier::load(privacy::ValueSetFiles::inProfilesDir(cfg.mapping.profiles_dir)));
  const auto stats = classifier.stats();
  GW_LOG(Info, Mapping, "sensitivity_value_sets_loaded")
      .kv("codes", stats.codes)
      .kv("whole_systems", stats.whole_systems)
      .kv("unverified", stats.unverified);
  return std::make_shared<const privacy::Classifier>(std::move(classifier));
}

Result<ImportOutcome> importCsv(const config::GatewayConfig& config, std::string_view mapper_arg,
                                const std::filesystem::path& csv_file) {
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
    GW_TRY(named, loadCsvMappers(config));
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

  GW_TRY(auto snapshot, loadMappingSnapshot(config.mapping.format_dir, config.mapping.profiles_dir));
  GW_TRY(auto classifier, loadClassifier(config));
  GW_TRY(auto store, openConfiguredStore(config, 2));
  GW_TRY(auto record_key_secret, store->deploymentSecret("record-key"));
  // Decisions need the consents: the same registry the gateway would load. Consents imported
  // here are settled (queued and held items) by the gateway at its next start.
  consent::ConsentRegistry registry;
  GW_TRY(auto unreconciled, loadConsentRegistry(*store, registry));
  (void)unreconciled;
  SystemClock clock;
  ImportOutcome outcome;
  {
    ingest::GroupCommitter committer(*store, clock);
    const ingest::IngestService service(ingest::IngestParts{
        config, *snapshot->schemas, *snapshot->mappers, *snapshot->profiles, nullptr, committer, *store, *classifier,
        registry, ingest::DisclosurePolicy{config.privacy.part2_notice, config.privacy.policy_version},
        std::move(record_key_secret), nullptr});
    // The operator running import has the config file and the database: every configured clinic.
    const ingest::Submitter submitter{"cli-import", {"*"}};
    std::promise<ingest::IngestReply> promise;
    service.ingestCsv(csv_text, *mapper, submitter, [&](ingest::IngestReply r) { promise.set_value(std::move(r)); });
    auto reply = promise.get_future().get();
    outcome.status = reply.status;
    outcome.body = std::move(reply.body);
  }  // the committer drains before the store closes
  rapidjson::Document doc;
  doc.Parse(outcome.body.c_str());
  const auto* rejected = doc.IsObject() ? json::find(doc, "rejected") : nullptr;
  outcome.all_accepted = outcome.status == 202 && rejected != nullptr && rejected->IsUint() && rejected->GetUint() == 0;
  GW_LOG(Info, Ingest, "csv_import_done").kv("status", outcome.status).kv("all_accepted", outcome.all_accepted ? "true" : "false");
  return outcome;
}

}  // namespace gw::app
