// Job ids for store tests: the relay's shape ("job_" + 26 characters), in creation order.
#pragma once

#include <cstdio>
#include <string>

namespace fetchrelay::test {

// Zero-padded, so the ids of increasing n sort like ULIDs of increasing time.
inline std::string id_of(int n) {
  char buf[31];
  std::snprintf(buf, sizeof buf, "job_%026d", n);
  return buf;
}

}  // namespace fetchrelay::test
