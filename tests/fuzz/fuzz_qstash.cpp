// Fuzz target: the QStash parsers (core/qstash.h): Upstash-Retry-Delay expressions and
// Upstash-Signature JWT verification of arbitrary tokens.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/qstash.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  if (auto e = fetchrelay::qstash::retry_delay_expr::parse(text, &error)) {
    for (std::uint32_t retried : {0u, 1u, 7u, 1000u}) {
      auto ms = e->delay_ms(retried);
      if (ms < 0 || ms > 86'400'000) std::abort();  // clamped to [0, 24 h]
    }
  } else if (error.empty()) {
    std::abort();  // a refusal says why
  }
  if (fetchrelay::qstash::verify("key", text, "", "", 1'800'000'000)) std::abort();  // never a forgery
  return 0;
}
