// Fuzz target: duration, size and time parsing (core/units.h, core/time.h, core/retry.h).
// Arbitrary bytes must be accepted or refused cleanly: no crash, no hang, no sanitizer report;
// what parses formats back to something that parses to the same instant.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/retry.h"
#include "core/time.h"
#include "core/units.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)fetchrelay::parse_duration(text);
  (void)fetchrelay::parse_size(text);
  (void)fetchrelay::parse_http_date(text);
  (void)fetchrelay::parse_retry_after(text, 1'800'000'000'000);
  if (auto t = fetchrelay::parse_rfc3339(text)) {
    if (*t >= 0 && *t < 253'402'300'800'000) {  // years 1970-9999: what format_rfc3339 writes
      auto again = fetchrelay::parse_rfc3339(fetchrelay::format_rfc3339(*t));
      if (!again || *again != *t) std::abort();
    }
  }
  return 0;
}
