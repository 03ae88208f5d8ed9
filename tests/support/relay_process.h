// The real fetchrelay process for end-to-end tests: started on a config with port 0 and a port
// file, called over loopback with the raw test client, stopped with SIGTERM (or killed by the
// process guard when the test ends).
#pragma once

#include <signal.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "tests/support/process.h"
#include "tests/support/raw_http.h"

namespace fetchrelay::test {

/// The value of a sample (name with its labels, exactly as rendered) in Prometheus text; -1 if absent.
inline double metric_value(const std::string& text, const std::string& sample) {
  std::smatch m;
  std::regex re("(^|\\n)" + std::regex_replace(sample, std::regex(R"([{}"])"), R"(\$&)") + " ([0-9.e+-]+)");
  return std::regex_search(text, m, re) ? std::stod(m[2]) : -1;
}

/// The sum of every sample of a family, labelled or not; 0 if there is none.
inline double metric_sum(const std::string& text, const std::string& family) {
  double sum = 0;
  std::regex re("(^|\\n)" + family + "(\\{[^}]*\\})? ([0-9.e+-]+)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    sum += std::stod((*it)[3]);
  }
  return sum;
}

/// A relay config for process tests: port 0, the store in `dir`, loopback targets allowed, the API
/// keys `keys` (YAML list items such as "{tenant: a, key: k}"), then `extra` YAML as is.
inline std::string loopback_config(const temp_dir& dir, const std::string& keys, const std::string& extra = "") {
  return "server: {listen: 127.0.0.1:0}\n"
         "storage: {path: " + dir.file("data") + "}\n"
         "auth: {keys: [" + keys + "]}\n"
         "delivery: {allow_networks: [127.0.0.0/8]}\n" + extra;
}

class relay_process {
 public:
  /// `key`: the API key wait_terminal uses unless told another.
  relay_process(const temp_dir& dir, std::string config, std::string key = "")
      : dir_(dir), config_(std::move(config)), key_(std::move(key)) {
    start();
  }
  void start() {
    std::string cfg = dir_.write("relay.yaml", config_);
    std::remove(dir_.file("port").c_str());
    proc_ = std::make_unique<process>(FETCHRELAY_BIN,
                                      std::vector<std::string>{"serve", "--config", cfg, "--port-file", dir_.file("port")},
                                      dir_.file("relay.log"));
    auto p = wait_for_port_file(dir_.file("port"), 30s);
    port_ = p ? *p : 0;
  }
  int stop() {
    proc_->signal(SIGTERM);
    auto info = proc_->wait(20s);
    return info.exited ? info.code : -1;
  }
  /// Any signal (SIGSTOP and SIGCONT freeze and thaw it).
  void signal(int sig) { proc_->signal(sig); }
  /// kill -9: no shutdown, no final flush; true once the process is gone.
  bool kill9() {
    proc_->signal(SIGKILL);
    return proc_->wait(10s).exited;
  }
  /// Polls /readyz until 200 (bounded: 10 s).
  bool wait_ready() {
    for (int i = 0; i < 200; ++i) {
      auto r = call("GET", "/readyz", "");
      if (r && r->status == 200) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  std::uint16_t port() const { return port_; }
  std::string log() const { return proc_->log(); }

  std::optional<raw_response> call(const std::string& method, const std::string& target, const std::string& key,
                                   const std::string& headers = "", const std::string& body = "") {
    std::string auth = key.empty() ? "" : "Authorization: Bearer " + key + "\r\n";
    return http_request(port_, method, target, body, auth + headers);
  }

  /// Polls GET /metrics until `sample` reads `value` (bounded: 10 s); returns the last text. The
  /// store's counters follow a job's terminal write, which GET of a live job may answer before.
  std::string metrics_when(const std::string& sample, double value) {
    std::string text;
    for (int i = 0; i < 200; ++i) {
      auto r = call("GET", "/metrics", "");
      text = r ? r->body : "";
      if (metric_value(text, sample) == value) break;
      std::this_thread::sleep_for(50ms);
    }
    return text;
  }

  /// Polls GET /v1/jobs/{id} until its status is terminal (bounded).
  nlohmann::json wait_terminal(const std::string& id, std::string key = "") {
    if (key.empty()) key = key_;
    for (int i = 0; i < 300; ++i) {
      auto r = call("GET", "/v1/jobs/" + id, key);
      if (r && r->status == 200) {
        auto j = nlohmann::json::parse(r->body);
        std::string s = j["status"];
        if (s == "delivered" || s == "failed" || s == "cancelled") return j;
      }
      std::this_thread::sleep_for(50ms);
    }
    return nlohmann::json();
  }

 private:
  const temp_dir& dir_;
  std::string config_;
  std::string key_;
  std::unique_ptr<process> proc_;
  std::uint16_t port_ = 0;
};

}  // namespace fetchrelay::test
