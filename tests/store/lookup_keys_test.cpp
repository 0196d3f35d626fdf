// Identifiers at rest (issue 9, defect 10): the database holds lookup keys (keyed hashes under a
// secret the master key wraps), never a clear MRN, record id, resource id, consent id or
// deployment secret, and a database of schema 4 is converted at its first open. (Through the
// real ingest path: ingest_service_test.cpp; lookups on any backend: the store contract.)
#include <Poco/Data/LOB.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "common/crypto.hpp"
#include "common/ids.hpp"
#include "store/keyring.hpp"
#include "store/lookup_keys.hpp"
#include "store/sqlite_migrations.hpp"
#include "store/sqlite_store.hpp"
#include "store/store.hpp"
#include "support/test_files.hpp"
#include "support/test_keys.hpp"

namespace gw::store {
namespace {

namespace fs = std::filesystem;
using namespace Poco::Data::Keywords;
using privacy::DataClass;
using ::testing::HasSubstr;

crypto::SecretKey keyOf(char fill) { return crypto::SecretKey::fromBytes(std::string(32, fill)).value(); }

TEST(LookupKeys, KindsAndPartsNeverGiveTheSameKey) {
  const LookupKeys keys(keyOf('k'));
  EXPECT_EQ(keys.record("c1", "r1"), keys.record("c1", "r1"));
  EXPECT_EQ(keys.record("c1", "r1").size(), 2 * kLookupKeyBytes);
  EXPECT_NE(keys.record("c1", "r1"), keys.record("c2", "r1"));
  // Length prefixes: moving the boundary between the parts gives another key.
  EXPECT_NE(keys.record("c1", "2r"), keys.record("c12", "r"));
  EXPECT_NE(keys.record("c1", "Patient"), keys.resource("c1", "Patient")) << "kinds are separated";
  EXPECT_EQ(keys.patient("c1", "A12345"), keys.patientOfResource(ids::resourceId("c1", "Patient", "A12345")));
  EXPECT_NE(keys.patient("c1", "A12345"), keys.patient("c2", "A12345"));
  EXPECT_EQ(keys.consent("c1", "k1"), keys.consentReference("c1/k1"));
  // Without the secret nobody recomputes them: another secret, other keys.
  EXPECT_NE(LookupKeys(keyOf('x')).patient("c1", "A12345"), keys.patient("c1", "A12345"));
  EXPECT_EQ(keys.patient("c1", "A12345").find("A12345"), std::string::npos);
  // The documented construction: HMAC-SHA256 of the length-prefixed parts, first 128 bits.
  EXPECT_EQ(keys.record("c1", "r1"),
            crypto::hmacSha256Hex(keyOf('k'), payloadContext({"gw-lookup-v1", "record", "c1", "r1"}), kLookupKeyBytes));
}

// The files of a database, read while it is open (the WAL holds the newest pages).
void expectNoneInFiles(const std::string& path, const std::vector<std::string>& clear, const std::string& when) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const fs::path file = path + suffix;
    if (!fs::exists(file)) continue;
    const std::string bytes = test::readFile(file);
    for (const auto& c : clear) {
      EXPECT_EQ(bytes.find(c), std::string::npos) << c << " is in clear in " << file.filename() << " " << when;
    }
  }
}

class IdentifiersAtRest : public ::testing::Test {
 protected:
  void SetUp() override {
    Poco::Data::SQLite::Connector::registerConnector();
    dir_ = fs::temp_directory_path() / ("gw-ids-" + ids::randomHex(6));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path() const { return (dir_ / "gw.db").string(); }
  Result<std::unique_ptr<Store>> open() { return openSqliteStore({path(), false, 2, test::testMasterKey()}); }
  static std::int64_t at() { return 1'800'000'000'000; }

  fs::path dir_;
};

// Every kind of row the store writes, with ids that embed the MRN, through the Store API.
TEST_F(IdentifiersAtRest, StoredRowsHoldLookupKeysAndEveryLookupStillWorks) {
  auto opened = open();
  ASSERT_TRUE(opened) << opened.error().describe();
  auto store = std::move(opened).value();
  const std::string patient_id = ids::resourceId("c1", "Patient", "A12345");
  const std::string consent_resource = ids::resourceId("c1", "Consent", "cn-A12345");
  IngestWrite w;
  w.clinic = "c1";
  w.record_id = "c1:rx:A12345-0001";
  w.record_type = "mat_prescription";
  w.content_hash = "h1";
  w.payload = R"({"patient":{"mrn":"A12345"}})";
  w.patient_key = store->lookupKeys().patient("c1", "A12345");
  w.state = RecordState::Mapped;
  w.classes = DataClass::Sud;
  w.resources.push_back({"Patient", patient_id, "https://ids/mrn", "A12345", "{}", DataClass::Sud});
  w.outbox.push_back(
      {"p1", "{}", 1, DataClass::Sud, R"({"patient":")" + w.patient_key + R"(","id":")" + patient_id + "\"}"});
  w.audit.push_back(AuditEntryBuilder(AuditKind::Decision, AuditOutcome::Permit, "gateway", at())
                        .clinic("c1")
                        .patient(w.patient_key)
                        .partner("p1", "TREAT")
                        .resource("Patient", patient_id, DataClass::Sud)
                        .consent("c1/cn-A12345", 1)
                        .build());
  IngestWrite consent = w;
  consent.record_id = "c1:cn:A12345";
  consent.record_type = "consent";
  consent.resources = {{"Consent", consent_resource, "https://ids/consent", "cn-A12345", "{}", DataClass::Sud}};
  consent.outbox.clear();
  consent.audit.clear();
  consent.consent = privacy::ConsentRow{
      "c1",         "cn-A12345",      0,   w.patient_key, "p1", "active", "TREAT", "sud", "2026-01-01", "", "",
      "2026-01-01", consent_resource, at()};
  ASSERT_TRUE(store->ingest({w, consent}, fromUnixMillis(at())));
  const std::string secret = store->deploymentSecret("record-key").value();
  auto due = store->dueItems("p1", fromUnixMillis(at()), 10);
  ASSERT_TRUE(due && due.value().size() == 1);
  ASSERT_TRUE(store->markDelivered(due.value()[0].id, {{"201 Created", "Patient/77/_history/1", ""}}, fromUnixMillis(at())));

  expectNoneInFiles(path(),
                    {"A12345", "c1:rx:A12345-0001", "c1:cn:A12345", "cn-A12345", patient_id, consent_resource, secret},
                    "with the store open");

  // Lookups by clinic + record id, clinic + MRN and resource id; the clear ids come back.
  auto status = store->recordStatus("c1", "c1:rx:A12345-0001");
  ASSERT_TRUE(status && status.value());
  EXPECT_EQ(status.value()->record_id, "c1:rx:A12345-0001");
  EXPECT_EQ(status.value()->resources.at(0).resource_id, patient_id);
  EXPECT_EQ(status.value()->resources.at(0).identifier_value, "A12345");
  EXPECT_EQ(store->ingest({w}, fromUnixMillis(at() + 1)).value()[0].disposition, IngestDisposition::Unchanged);
  EXPECT_EQ(*store->recordPayload("c1", "c1:rx:A12345-0001", 1).value(), w.payload);
  EXPECT_TRUE(store->resourceBody("Consent", consent_resource).value());
  const auto consents = store->consents(store->lookupKeys().patient("c1", "A12345")).value();
  ASSERT_EQ(consents.size(), 1u);
  EXPECT_EQ(consents[0].row.consent_id, "cn-A12345");
  EXPECT_EQ(consents[0].row.resource_id, consent_resource);
  EXPECT_EQ(consents[0].consent_key, store->lookupKeys().consent("c1", "cn-A12345"));
  ASSERT_TRUE(store->markConsentReconciled("c1", "cn-A12345", 1));
  EXPECT_TRUE(store->consents("").value()[0].reconciled);
  AuditQuery q;
  q.patient_key = store->lookupKeys().patient("c1", "A12345");
  const auto page = store->queryAudit(q).value();
  ASSERT_EQ(page.entries.size(), 1u);
  EXPECT_EQ(page.entries[0].resource_id, store->lookupKeys().resource("Patient", patient_id));
  EXPECT_EQ(page.entries[0].consent_id, consents[0].consent_key) << "the consents answer names the log's consent";
  EXPECT_TRUE(store->verifyAudit(std::nullopt).value().ok);
}

// --- a database of schema 4, as the previous version wrote it -----------------------------------

// An envelope as keyring.hpp defines it, sealed with `context` (schema 4 bound it to clear ids).
std::string envelope(const crypto::SecretKey& key, DataClass c, std::string_view plain, const std::string& context) {
  std::string header = "GW1";
  header.push_back(static_cast<char>(static_cast<std::uint8_t>(c)));
  header.append(std::string("\0\0\0\1", 4));
  return header + crypto::seal(key, plain, header + context).value();
}

Poco::Data::BLOB blob(const std::string& bytes) {
  return Poco::Data::BLOB(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

struct LegacyDatabase {
  std::string patient_id = ids::resourceId("c1", "Patient", "A12345");
  std::string consent_resource = ids::resourceId("c1", "Consent", "cn-A12345");
  std::string record_id = "c1:pt:A12345";
  std::string secret = ids::randomHex(32);
  std::string bundle = R"({"resourceType":"Bundle","entry":["A12345"]})";

  // Rows of every table, written with SQL as schema 4 had them, payloads sealed under data keys
  // the master key wraps (no lookup key yet: the first open makes it).
  void write(const std::string& path, bool with_audit_row) {
    Poco::Data::Session s("SQLite", path);
    s << "PRAGMA journal_mode=WAL", now;
    ASSERT_TRUE(applyMigrations(s, 4));
    const auto master = test::testMasterKey();
    const auto sud = crypto::SecretKey::generate().value();
    for (DataClass c : {DataClass::General, DataClass::Sud, DataClass::Mh}) {
      const auto key = c == DataClass::Sud ? sud : crypto::SecretKey::generate().value();
      std::string name(privacy::className(c)), master_id = master.id();
      auto wrapped = blob(
          crypto::seal(master, std::string_view(reinterpret_cast<const char*>(key.data()), key.size()), dataKeyAad(c, 1))
              .value());
      Poco::Int64 created = 1;
      s << "INSERT INTO data_keys VALUES(?, 1, ?, ?, ?)", use(name), use(wrapped), use(master_id), use(created), now;
    }
    auto payload = blob(envelope(sud, DataClass::Sud, R"({"record_id":"c1:pt:A12345","patient":{"mrn":"A12345"}})",
                                 payloadContext({"record_versions.payload", "c1", record_id, "1"})));
    auto value = blob(
        envelope(sud, DataClass::Sud, "A12345", payloadContext({"resources.identifier_value", "Patient", patient_id})));
    auto body = blob(envelope(sud, DataClass::Sud, R"({"resourceType":"Patient","id":")" + patient_id + "\"}",
                              payloadContext({"resources.body", "Patient", patient_id})));
    auto sealed_bundle = blob(
        envelope(sud, DataClass::Sud, bundle, payloadContext({"outbox.bundle", "p1", "c1", record_id, "1"})));
    const std::string disclosure = R"({"purpose":"TREAT","patient":")" + patient_id +
                                   R"(","resources":[{"type":"Patient","id":")" + patient_id + R"("}]})";
    s << "INSERT INTO records VALUES('c1', ?, 'patient', 1, 'h1', 'mapped', '', ?, 1, 1, 'sud')", use(record_id),
        use(patient_id), now;
    s << "INSERT INTO record_versions VALUES('c1', ?, 1, 'h1', ?, 1, 'sud')", use(record_id), use(payload), now;
    s << "INSERT INTO resources VALUES('Patient', ?, 'c1', ?, 1, 'https://ids/mrn', ?, ?, 'sud', 1)", use(patient_id),
        use(record_id), use(value), use(body), now;
    s << "INSERT INTO outbox(partner_id, clinic, record_id, record_version, patient_key, bundle, entry_count, state, "
         "attempts, next_attempt_at, last_error, outcome, created_at, updated_at, data_class, disclosure) "
         "VALUES('p1', 'c1', ?, 1, ?, ?, 1, 'queued', 0, 1, '', '', 1, 1, 'sud', ?)",
        use(record_id), use(patient_id), use(sealed_bundle), bind(disclosure), now;
    s << "INSERT INTO consents VALUES('c1', 'cn-A12345', 1, ?, 'p1', 'active', 'TREAT', 'sud', '2026-01-01', '', '', "
         "'2026-01-01', ?, 1, 0)",
        use(patient_id), use(consent_resource), now;
    s << "INSERT INTO deployment_secrets VALUES('record-key', ?)", use(secret), now;
    if (with_audit_row) {
      std::vector<AuditEntry> entries = {AuditEntryBuilder(AuditKind::Decision, AuditOutcome::Permit, "gateway", 5)
                                             .clinic("c1")
                                             .patient(patient_id)
                                             .partner("p1", "TREAT")
                                             .resource("Patient", patient_id, DataClass::Sud)
                                             .build()};
      // A schema 4 row: chained with the unkeyed (v1) hash, as the gateway wrote it then.
      entries[0].seq = 1;
      entries[0].prev_hash = std::string(kGenesisHash);
      entries[0].hash = entryHash(entries[0]);
      const AuditRow r = toAuditRow(entries[0]);
      s << "INSERT INTO audit_log VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", bind(r.seq), bind(r.at_ms), bind(r.kind),
          bind(r.actor), bind(r.clinic), bind(r.patient_key), bind(r.partner_id), bind(r.purpose), bind(r.resource_type),
          bind(r.resource_id), bind(r.classes), bind(r.labels), bind(r.consent_id), bind(r.consent_version), bind(r.outcome),
          bind(r.reason), bind(r.policy_version), bind(r.detail), bind(r.prev_hash), bind(r.hash), now;
    }
  }
};

TEST_F(IdentifiersAtRest, ASchema4DatabaseIsConvertedAtItsFirstOpenAndNothingClearRemains) {
  LegacyDatabase old;
  old.write(path(), false);
  ASSERT_NE(test::readFile(path()).find(old.record_id), std::string::npos) << "the fixture holds clear ids";

  auto opened = open();
  ASSERT_TRUE(opened) << opened.error().describe();
  auto store = std::move(opened).value();
  expectNoneInFiles(path(), {"A12345", old.record_id, "cn-A12345", old.patient_id, old.consent_resource, old.secret},
                    "after the conversion");

  // Every row reads back through its lookup key, with the values it had.
  const std::string patient = store->lookupKeys().patient("c1", "A12345");
  auto status = store->recordStatus("c1", old.record_id);
  ASSERT_TRUE(status && status.value()) << "found by clinic + record id";
  EXPECT_EQ(status.value()->version, 1);
  EXPECT_EQ(status.value()->resources.at(0).resource_id, old.patient_id);
  EXPECT_EQ(status.value()->resources.at(0).identifier_value, "A12345");
  EXPECT_THAT(*store->recordPayload("c1", old.record_id, 1).value(), HasSubstr("A12345"));
  EXPECT_TRUE(store->resourceBody("Patient", old.patient_id).value());
  auto due = store->dueItems("p1", fromUnixMillis(at()), 10);
  ASSERT_TRUE(due && due.value().size() == 1);
  EXPECT_EQ(due.value()[0].bundle, old.bundle);
  EXPECT_EQ(due.value()[0].patient_key, patient);
  EXPECT_THAT(due.value()[0].disclosure, HasSubstr(R"("patient":")" + patient + "\""))
      << "the disclosure names the patient by the key the registry holds";
  EXPECT_THAT(due.value()[0].disclosure, HasSubstr(old.patient_id)) << "its resource ids are kept (sealed)";
  EXPECT_EQ(store->pendingItems("p1", patient).value().size(), 1u);
  const auto consents = store->consents(patient).value();
  ASSERT_EQ(consents.size(), 1u);
  EXPECT_EQ(consents[0].row.consent_id, "cn-A12345");
  EXPECT_EQ(consents[0].row.resource_id, old.consent_resource);
  EXPECT_EQ(store->deploymentSecret("record-key").value(), old.secret) << "log pseudonyms stay the same";
  // A resend of the same content is still recognised.
  IngestWrite resend;
  resend.clinic = "c1";
  resend.record_id = old.record_id;
  resend.record_type = "patient";
  resend.content_hash = "h1";
  resend.patient_key = patient;
  resend.state = RecordState::Mapped;
  EXPECT_EQ(store->ingest({resend}, fromUnixMillis(at())).value()[0].disposition, IngestDisposition::Unchanged);

  // Converted once: a second open finds nothing to do and the same rows.
  store.reset();
  store = open().value();
  EXPECT_TRUE(store->recordStatus("c1", old.record_id).value());
  EXPECT_EQ(store->deploymentSecret("record-key").value(), old.secret);
}

// The decision log is hash-chained: its rows from before the conversion stay as they were (they
// name the patient by its FHIR id), still verify, and are found by clinic + MRN with the new ones.
TEST_F(IdentifiersAtRest, LogRowsFromBeforeTheConversionStayChainedAndFoundByMrn) {
  LegacyDatabase old;
  old.write(path(), true);
  auto store = open().value();
  EXPECT_TRUE(store->verifyAudit(std::nullopt).value().ok);
  ASSERT_TRUE(store->appendAudit({AuditEntryBuilder(AuditKind::Decision, AuditOutcome::Deny, "gateway", at())
                                      .clinic("c1")
                                      .patient(store->lookupKeys().patient("c1", "A12345"))
                                      .build()}));
  AuditQuery q;
  q.patient_key = store->lookupKeys().patient("c1", "A12345");
  EXPECT_EQ(store->queryAudit(q).value().entries.size(), 1u);
  q.legacy_patient_key = old.patient_id;
  EXPECT_EQ(store->queryAudit(q).value().entries.size(), 2u);
  EXPECT_TRUE(store->verifyAudit(std::nullopt).value().ok);
}

TEST_F(IdentifiersAtRest, AConversionThatFailsChangesNothing) {
  LegacyDatabase old;
  old.write(path(), false);
  {
    // A damaged payload: the conversion cannot open it.
    Poco::Data::Session s("SQLite", path());
    s << "UPDATE record_versions SET payload = "
         "x'475731020000000100000000000000000000000000000000000000000000000000000000000000000000000000000000'",
        now;
  }
  auto failed = open();
  ASSERT_FALSE(failed);
  EXPECT_THAT(failed.error().message, HasSubstr("nothing was changed"));
  EXPECT_THAT(failed.error().where, HasSubstr("record_versions"));
  Poco::Data::Session s("SQLite", path());
  std::string record_key;
  s << "SELECT record_key FROM records", into(record_key), now;
  EXPECT_EQ(record_key, old.record_id) << "rolled back";
}

}  // namespace
}  // namespace gw::store
