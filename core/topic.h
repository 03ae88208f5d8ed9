// A topic (issue 13): a named list of endpoints; a submission to a topic makes one job per
// endpoint. Topics create jobs; they are never a second delivery path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fetchrelay {

struct topic_endpoint {
  std::string url;
  std::string name;  // unique within the topic; defaults to the URL
  bool operator==(const topic_endpoint&) const = default;
};

struct topic_state {
  std::string tenant;
  std::string name;  // [A-Za-z0-9_.-]{1,64}, unique per tenant
  std::vector<topic_endpoint> endpoints;  // 1 to 100
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  bool operator==(const topic_state&) const = default;
};

inline constexpr std::size_t max_topic_endpoints = 100;

}  // namespace fetchrelay
