// A damaged store under the real fetchrelay process (issue 16): start-up stops with a message
// naming the damaged file, the relay never repairs on its own, `fetchrelay repair --config F`
// is refused while a relay runs and otherwise keeps what can be read and says how many jobs.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <filesystem>
#include <fstream>
#include <set>

#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/relay_process.h"

namespace fetchrelay::test::damaged_store_test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* key_a = "relay_sk_tenant_a_123";

TEST(DamagedStoreProcess, ADamagedLogStopsStartUpNamingItAndRepairKeepsWhatCanBeRead) {
  temp_dir dir;
  relay_process relay(dir, loopback_config(dir, std::string("{tenant: a, key: ") + key_a + "}"), key_a);
  ASSERT_TRUE(relay.wait_ready()) << relay.log();
  std::vector<std::string> ids;
  for (int n = 0; n < 40; ++n) {  // due in an hour: they stay in the store
    auto r = relay.call("POST", "/v1/fetch", key_a, "X-Fetch-Url: http://127.0.0.1:9/x\r\nX-Delay: 1h\r\n",
                        "{\"n\":" + std::to_string(n) + ",\"pad\":\"" + std::string(400, 'p') + "\"}");
    ASSERT_TRUE(r && r->status == 202);
    ids.push_back(json::parse(r->body)["id"]);
  }
  // Repair is refused while the relay holds the store.
  std::string out;
  auto busy = run_command(FETCHRELAY_BIN, {"repair", "--config", dir.file("relay.yaml")}, out, 30s);
  ASSERT_TRUE(busy.exited);
  EXPECT_EQ(busy.code, 1) << out;
  EXPECT_NE(out.find("in use by another process"), std::string::npos) << out;

  ASSERT_TRUE(relay.kill9());  // the jobs stay in the log, as after a crash
  fs::path log_file;
  for (const auto& e : fs::directory_iterator(dir.file("data"))) {
    if (e.path().extension() == ".log") log_file = e.path();
  }
  ASSERT_FALSE(log_file.empty());
  {
    std::fstream f(log_file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(log_file) / 2));
    f.write(std::string(64, '\xA5').data(), 64);
  }
  auto size_before = fs::file_size(log_file);

  // Start-up stops, naming the file and the way out; the store is left as it was.
  std::string start_out;
  auto start = run_command(FETCHRELAY_BIN, {"serve", "--config", dir.file("relay.yaml")}, start_out, 30s);
  ASSERT_TRUE(start.exited) << "the relay started on a damaged store";
  EXPECT_NE(start.code, 0);
  EXPECT_NE(start_out.find("is damaged: " + log_file.filename().string() + " (corruption: "), std::string::npos) << start_out;
  EXPECT_NE(start_out.find("fetchrelay repair --config"), std::string::npos) << start_out;
  EXPECT_EQ(fs::file_size(log_file), size_before) << "start-up changed the damaged store";

  auto rep = run_command(FETCHRELAY_BIN, {"repair", "--config", dir.file("relay.yaml")}, out, 60s);
  ASSERT_TRUE(rep.exited);
  ASSERT_EQ(rep.code, 0) << out;
  EXPECT_NE(out.find("damaged before the repair: " + log_file.filename().string()), std::string::npos) << out;
  auto kept_at = out.find("repair done: kept ");
  ASSERT_NE(kept_at, std::string::npos) << out;
  int kept = std::stoi(out.substr(kept_at + std::string("repair done: kept ").size()));
  EXPECT_GT(kept, 0) << out;
  EXPECT_LT(kept, 40) << "the records after the damage cannot all have survived: " << out;
  EXPECT_TRUE(fs::exists(dir.file("data") + ".before-repair"));

  // The relay starts on the repaired store: exactly the kept jobs, still scheduled.
  relay.start();
  ASSERT_TRUE(relay.wait_ready()) << relay.log();
  int found = 0;
  for (const auto& id : ids) {
    auto r = relay.call("GET", "/v1/jobs/" + id, key_a);
    ASSERT_TRUE(r);
    if (r->status == 200) {
      ++found;
      EXPECT_EQ(json::parse(r->body)["status"], "scheduled") << r->body;
    }
  }
  EXPECT_EQ(found, kept);
  auto listed = relay.call("GET", "/v1/jobs?limit=100&status=scheduled", key_a);
  ASSERT_TRUE(listed && listed->status == 200);
  EXPECT_EQ(static_cast<int>(json::parse(listed->body)["jobs"].size()), kept) << "the listing index was rebuilt";
}

}  // namespace
}  // namespace fetchrelay::test::damaged_store_test
