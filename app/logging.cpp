#include "app/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "core/clock.h"
#include "core/log.h"
#include "core/time.h"

namespace fetchrelay::app {
namespace {

/// RFC 3339, UTC, milliseconds: the one timestamp format of every line.
void append_time(std::string& out, spdlog::log_clock::time_point t) {
  using namespace std::chrono;
  out += format_rfc3339(duration_cast<milliseconds>(t.time_since_epoch()).count());
}

std::string_view level_name(spdlog::level::level_enum l) {
  auto v = spdlog::level::to_string_view(l);
  return {v.data(), v.size()};
}

/// 2026-11-28T10:00:00.123Z info  job delivered job_id=job_... attempts=1
class text_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line;
    line.reserve(256);  // a job's line is ~200 bytes
    append_time(line, msg.time);
    line += ' ';
    auto level = level_name(msg.level);
    line.append(level);
    line.append(level.size() < 5 ? 5 - level.size() + 1 : 1, ' ');
    line.append(msg.payload.data(), msg.payload.size());
    log::append_fields_text(line);
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<text_formatter>(); }
};

/// {"ts":"2026-11-28T10:00:00.123Z","level":"info","msg":"job delivered","job_id":"job_...",...}
class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line;
    line.reserve(200);
    line += "{\"ts\":\"";
    append_time(line, msg.time);
    line += "\",\"level\":\"";
    line.append(level_name(msg.level));
    line += "\",\"msg\":\"";
    log::append_json_escaped(line, std::string_view(msg.payload.data(), msg.payload.size()));
    line += '"';
    log::append_fields_json(line);
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<json_formatter>(); }
};

}  // namespace

bool valid_log_level(const std::string& level) {
  return level == "trace" || level == "debug" || level == "info" || level == "warn" ||
         level == "error";
}

void setup_logging(const std::string& format, const std::string& level) {
  auto logger = std::make_shared<spdlog::logger>(
      "fetchrelay", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (format == "json") {
    logger->set_formatter(std::make_unique<json_formatter>());
  } else {
    logger->set_formatter(std::make_unique<text_formatter>());
  }
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace fetchrelay::app
