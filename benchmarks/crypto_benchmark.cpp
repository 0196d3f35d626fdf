// Cost of encryption at rest: AES-256-GCM seal/open of a typical stored payload, and the
// keyring's envelope on top (header, AAD). Build target (benchmarks/CMakeLists.txt):
//   add_executable(crypto_benchmark crypto_benchmark.cpp)
//   target_link_libraries(crypto_benchmark PRIVATE gw_store benchmark::benchmark)
#include <benchmark/benchmark.h>

#include <filesystem>

#include "common/crypto.hpp"
#include "common/ids.hpp"
#include "store/keyring.hpp"
#include "store/sqlite_store.hpp"

namespace {

using namespace gw;

std::string payload(std::size_t size) {
  std::string p(size, 'x');
  for (std::size_t i = 0; i < size; ++i) p[i] = static_cast<char>('a' + i % 26);
  return p;
}

void BM_Seal(benchmark::State& state) {
  const auto key = crypto::SecretKey::generate().value();
  const std::string plain = payload(static_cast<std::size_t>(state.range(0)));
  std::string out;
  for (auto _ : state) {
    out.clear();
    benchmark::DoNotOptimize(crypto::sealAppend(key, plain, "record_versions.payload|c1|r1|1", out));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Seal)->Arg(256)->Arg(2048)->Arg(16384);

void BM_Open(benchmark::State& state) {
  const auto key = crypto::SecretKey::generate().value();
  const std::string sealed = crypto::seal(key, payload(static_cast<std::size_t>(state.range(0))), "aad").value();
  std::string out;
  for (auto _ : state) {
    out.clear();
    benchmark::DoNotOptimize(crypto::openAppend(key, sealed, "aad", out));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Open)->Arg(256)->Arg(2048)->Arg(16384);

// The store's path: envelope + row context, from a keyring opened on a scratch database.
struct Ring {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("gw-bench-" + ids::randomHex(6));
  std::unique_ptr<store::StoreBackend> backend;
  store::Keyring keyring;
  Ring() {
    backend = store::openSqliteBackend({(dir / "gw.db").string(), false, 1, {}}).value();
    keyring = store::Keyring::open(*backend, crypto::SecretKey::generate().value(), SystemTime{}).value();
  }
  ~Ring() {
    backend.reset();
    std::filesystem::remove_all(dir);
  }
};

void BM_KeyringSealOpen2K(benchmark::State& state) {
  static Ring ring;
  const std::string plain = payload(2048);
  for (auto _ : state) {
    const auto context = store::payloadContext({"record_versions.payload", "c1", "c1:rx:9001", "1"});
    auto envelope = ring.keyring.seal(privacy::DataClass::Sud, plain, context);
    benchmark::DoNotOptimize(ring.keyring.open(envelope.value(), context));
  }
}
BENCHMARK(BM_KeyringSealOpen2K);

}  // namespace

BENCHMARK_MAIN();
