#include "core/job.h"

namespace fetchrelay {

std::string_view to_string(job_status s) noexcept {
  switch (s) {
    case job_status::scheduled: return "scheduled";
    case job_status::active: return "active";
    case job_status::retrying: return "retrying";
    case job_status::delivered: return "delivered";
    case job_status::failed: return "failed";
    case job_status::cancelled: return "cancelled";
  }
  return "unknown";
}

std::optional<job_status> parse_job_status(std::string_view s) noexcept {
  for (auto v : {job_status::scheduled, job_status::active, job_status::retrying,
                 job_status::delivered, job_status::failed, job_status::cancelled}) {
    if (to_string(v) == s) return v;
  }
  return std::nullopt;
}

bool is_terminal(job_status s) noexcept {
  return s == job_status::delivered || s == job_status::failed || s == job_status::cancelled;
}

}  // namespace fetchrelay
