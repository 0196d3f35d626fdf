// Fuzzes the mapping-language loader: an engineer's mapper file, however broken, must give an
// error with file:line:column and never crash the gateway.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "mapping/mapper_set.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("gw-mapper-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(std::filesystem::temp_directory_path() / ("gw-mapper-fuzz-" + std::to_string(getpid())),
                                  ignored);
    });
    return d;
  }();
  {
    std::ofstream out(dir / "patient.mapper.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  auto loaded = gw::mapping::MapperSet::loadDirectory(dir);
  if (!loaded) (void)loaded.error().describe();
  return 0;
}
