// The broken configs in tests/config/broken/: each file lists the exact errors it must
// produce in "# expect: " lines; "{file}" stands for the file's path.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fetchrelay::test {

struct broken_config {
  std::string path;
  std::vector<std::string> expected;  // exact error lines, in order
};

inline std::vector<broken_config> broken_configs() {
  std::vector<broken_config> out;
  std::filesystem::path dir = std::filesystem::path(FETCHRELAY_SOURCE_DIR) / "tests/config/broken";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    broken_config c;
    c.path = entry.path().string();
    std::ifstream in(c.path);
    std::string line;
    const std::string marker = "# expect: ";
    while (std::getline(in, line)) {
      if (line.rfind(marker, 0) != 0) continue;
      std::string e = line.substr(marker.size());
      for (size_t p; (p = e.find("{file}")) != std::string::npos;) e.replace(p, 6, c.path);
      c.expected.push_back(e);
    }
    out.push_back(std::move(c));
  }
  std::sort(out.begin(), out.end(),
            [](const broken_config& a, const broken_config& b) { return a.path < b.path; });
  return out;
}

}  // namespace fetchrelay::test
