// A really full disk under the real fetchrelay process (issue 16): the store's folder is a small
// tmpfs mounted by the test (root only, as in CI), nearly filled by a file before the relay
// starts. A burst of submissions fills the rest; then every answer is 202 or 503 JSON, /readyz is
// 503, and once the filler is deleted the relay recovers without a restart. Every job that got a
// 202 is delivered and is still there after a restart.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/relay_process.h"
#include "tests/support/test_origin.h"

namespace fetchrelay::test::full_disk_test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* key_a = "relay_sk_tenant_a_123";

/// A tmpfs of `size` mounted at `path` for the test's life (lazily unmounted at the end).
class tmpfs_mount {
 public:
  tmpfs_mount(const std::string& path, const std::string& size) : path_(path) {
    fs::create_directories(path);
    std::string opts = "size=" + size + ",mode=0700";
    if (::mount("tmpfs", path.c_str(), "tmpfs", 0, opts.c_str()) == 0) {
      mounted_ = true;
    } else {
      errno_ = errno;
      error_ = std::strerror(errno_);
    }
  }
  ~tmpfs_mount() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  int error_code() const { return errno_; }

 private:
  std::string path_;
  bool mounted_ = false;
  int errno_ = 0;
  std::string error_;
};

/// Writes `bytes` zero bytes to `path`, or as many as fit.
void fill(const std::string& path, std::size_t bytes) {
  std::ofstream out(path, std::ios::binary);
  std::string chunk(64 << 10, '\0');
  for (std::size_t done = 0; done < bytes && out; done += chunk.size()) out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
}

TEST(FullDisk, SubmissionsGet503WhileTheDiskIsFullNothingAcknowledgedIsLostAndTheRelayRecoversByItself) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root (CI runs as root)";
  temp_dir dir;
  tmpfs_mount disk(dir.file("disk"), "24m");
  if (!disk.mounted() && disk.error_code() == EPERM) GTEST_SKIP() << "root here may not mount (no CAP_SYS_ADMIN)";
  ASSERT_TRUE(disk.mounted()) << "mount -t tmpfs failed: " << disk.error();
  // Leave about 6 MiB: more than the store needs to open, less than the burst writes.
  fill(dir.file("disk") + "/filler", 18u << 20);
  test_origin origin;
  std::string config = loopback_config(dir, std::string("{tenant: a, key: ") + key_a + "}",
                                       "limits: {max_body: 1MiB}\n"
                                       "policies:\n  default: {timeout: 2s, retry: {attempts: 20, schedule: [200ms], jitter: 0}}\n");
  config.replace(config.find(dir.file("data")), dir.file("data").size(), dir.file("disk") + "/data");
  relay_process relay(dir, config, key_a);
  ASSERT_TRUE(relay.wait_ready()) << relay.log();

  const std::string body = "{\"pad\":\"" + std::string(60 << 10, 'p') + "\"}";
  const std::string headers = "X-Fetch-Url: http://127.0.0.1:" + std::to_string(origin.port()) +
                              "/jobs/full\r\nContent-Type: application/json\r\n";
  std::set<std::string> acked;
  int refused = 0, other = 0;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  for (int n = 0; n < 2'000 && refused < 20 && std::chrono::steady_clock::now() < deadline; ++n) {
    auto r = relay.call("POST", "/v1/fetch", key_a, headers, body);
    ASSERT_TRUE(r) << "no answer to submission " << n << ": " << relay.log();
    if (r->status == 202) {
      acked.insert(json::parse(r->body)["id"].get<std::string>());
    } else if (r->status == 503) {
      ++refused;
      std::string code = json::parse(r->body)["error"]["code"];
      EXPECT_TRUE(code == "store_unavailable" || code == "not_ready") << r->body;  // the failed write, then the ones after
      EXPECT_EQ(r->headers["retry-after"], "1");
    } else {
      ++other;
      ADD_FAILURE() << "submission " << n << ": " << r->status << " " << r->body;
    }
  }
  ASSERT_EQ(refused, 20) << "the disk never filled: " << acked.size() << " accepted";
  EXPECT_EQ(other, 0);
  EXPECT_GT(acked.size(), 5u);
  auto ready = relay.call("GET", "/readyz", "");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503) << ready->body;
  auto h = relay.call("GET", "/healthz", "");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200) << "the process is alive and says so";

  // Space comes back: the relay reopens the store by itself and takes submissions again.
  fs::remove(dir.file("disk") + "/filler");
  ASSERT_TRUE(relay.wait_ready()) << "not ready again after space was freed: " << relay.log();
  for (int n = 0; n < 10; ++n) {
    auto r = relay.call("POST", "/v1/fetch", key_a, headers, "{\"after\":" + std::to_string(n) + "}");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202) << r->body;
    acked.insert(json::parse(r->body)["id"].get<std::string>());
  }
  EXPECT_NE(relay.log().find("store write failed"), std::string::npos);
  EXPECT_NE(relay.log().find("store reopened"), std::string::npos);

  // Every acknowledged job is delivered, and still there after a restart.
  for (const auto& id : acked) {
    auto job = relay.wait_terminal(id);
    EXPECT_EQ(job.value("status", ""), "delivered") << id << ": " << job.dump().substr(0, 300);
  }
  ASSERT_EQ(relay.stop(), 0) << relay.log();
  relay.start();
  ASSERT_TRUE(relay.wait_ready()) << relay.log();
  std::size_t found = 0;
  for (const auto& id : acked) {
    auto r = relay.call("GET", "/v1/jobs/" + id, key_a);
    if (r && r->status == 200 && json::parse(r->body)["status"] == "delivered") ++found;
  }
  EXPECT_EQ(found, acked.size()) << "acknowledged jobs lost across the restart";
  std::set<std::string> delivered_ids;
  for (const auto& q : origin.received()) delivered_ids.insert(q.headers.count("x-fetch-job-id") ? q.headers.at("x-fetch-job-id") : "");
  for (const auto& id : acked) EXPECT_TRUE(delivered_ids.count(id)) << id << " never reached the target";
}

}  // namespace
}  // namespace fetchrelay::test::full_disk_test
