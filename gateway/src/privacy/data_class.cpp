#include "privacy/data_class.hpp"

namespace gw::privacy {

std::string_view className(DataClass c) {
  switch (c) {
    case DataClass::General: return "general";
    case DataClass::Sud: return "sud";
    case DataClass::Mh: return "mh";
  }
  return "sud";
}

std::optional<DataClass> parseClass(std::string_view s) {
  if (s == "general") return DataClass::General;
  if (s == "sud") return DataClass::Sud;
  if (s == "mh") return DataClass::Mh;
  return std::nullopt;
}

std::string classSetName(ClassSet s) {
  std::string out;
  for (DataClass c : {DataClass::General, DataClass::Sud, DataClass::Mh}) {
    if (!s.has(c)) continue;
    if (!out.empty()) out += ',';
    out += className(c);
  }
  return out;
}

std::optional<ClassSet> parseClassSet(std::string_view s) {
  ClassSet out;
  while (!s.empty()) {
    const auto comma = s.find(',');
    auto c = parseClass(s.substr(0, comma));
    if (!c) return std::nullopt;
    out.add(*c);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

DataClass storageClass(ClassSet s) {
  if (s.has(DataClass::Sud) || s.empty()) return DataClass::Sud;
  if (s.has(DataClass::Mh)) return DataClass::Mh;
  return DataClass::General;
}

}  // namespace gw::privacy
