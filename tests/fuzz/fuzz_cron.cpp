// Fuzz target: cron expressions (core/cron.h), with CRON_TZ zones and the next fire time.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>

#include "core/cron.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = fetchrelay::parse_cron(text);
  if (auto* c = std::get_if<fetchrelay::cron_schedule>(&parsed)) {
    const std::int64_t after = 1'800'000'000'000;
    auto next = fetchrelay::next_fire(*c, after);
    if (next && *next <= after) std::abort();  // strictly after
  }
  return 0;
}
