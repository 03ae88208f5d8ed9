#include "core/qstash.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

namespace fetchrelay::qstash::qstash_test {
namespace {

std::int64_t eval(std::string_view text, std::uint32_t retried) {
  std::string err;
  auto e = retry_delay_expr::parse(text, &err);
  EXPECT_TRUE(e.has_value()) << text << ": " << err;
  return e ? e->delay_ms(retried) : -1;
}

TEST(QstashRetryDelay, EvaluatesTheDocumentedLanguage) {
  EXPECT_EQ(eval("1000", 5), 1000);
  EXPECT_EQ(eval("pow(2, retried) * 1000", 0), 1000);
  EXPECT_EQ(eval("pow(2, retried) * 1000", 3), 8000);
  EXPECT_EQ(eval("1000 * (1 + retried)", 2), 3000);
  EXPECT_EQ(eval("max(10, min(retried * 100, 250))", 1), 100);
  EXPECT_EQ(eval("max(10, min(retried * 100, 250))", 9), 250);
  EXPECT_EQ(eval("sqrt(16) + abs(-4) + floor(1.7) + ceil(1.2) + round(2.5)", 0), 4 + 4 + 1 + 2 + 3);
  EXPECT_EQ(eval("exp(0) * 7", 0), 7);
  EXPECT_EQ(eval("10 - 2 - 3", 0), 5) << "left associative";
  EXPECT_EQ(eval("100 / 10 / 2", 0), 5);
  EXPECT_EQ(eval("2 + 3 * 4", 0), 14) << "precedence";
  EXPECT_EQ(eval("-retried + 10", 4), 6);
}

TEST(QstashRetryDelay, ClampsToZeroAndOneDay) {
  EXPECT_EQ(eval("0 - 5000", 0), 0);
  EXPECT_EQ(eval("1 / 0", 0), 86'400'000) << "infinity is a day at most";
  EXPECT_EQ(eval("0 / 0", 0), 0) << "NaN is no wait";
  EXPECT_EQ(eval("pow(10, 20)", 0), 86'400'000);
}

TEST(QstashRetryDelay, RefusesWhatItCannotRead) {
  for (std::string_view bad : {"", "retry", "pow(2)", "pow(2, 3, 4)", "1 +", "(1", "1)", "2 ^ 3", "1..2",
                               "system(1)", "min(1,", "retried retried"}) {
    std::string err;
    EXPECT_FALSE(retry_delay_expr::parse(bad, &err)) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
  std::string deep(200, '(');
  EXPECT_FALSE(retry_delay_expr::parse(deep + "1" + std::string(200, ')')));
  EXPECT_FALSE(retry_delay_expr::parse(std::string(300, '1')));
}

TEST(QstashBackoff, IsEToTheTwoAndAHalfNCappedAtADay) {
  EXPECT_EQ(default_backoff_ms(0), static_cast<std::int64_t>(std::exp(2.5) * 1000));  // ~12 s
  EXPECT_EQ(default_backoff_ms(1), static_cast<std::int64_t>(std::exp(5.0) * 1000));  // ~148 s
  EXPECT_EQ(default_backoff_ms(10), 86'400'000);
}

TEST(QstashSignature, VerifiesWithItsKeyOnlyAndChecksEveryClaim) {
  signature_claims c{"http://127.0.0.1:9/x?a=1", "{\"hello\":\"world\"}", 1'800'000'000, "jwt_abc"};
  std::string jwt = sign("sig_current", c);
  EXPECT_TRUE(verify("sig_current", jwt, c.body, c.url, c.now_s));
  EXPECT_TRUE(verify("sig_current", jwt, c.body, "", c.now_s + 299));
  EXPECT_FALSE(verify("sig_next", jwt, c.body, c.url, c.now_s)) << "other key";
  EXPECT_FALSE(verify("sig_current", jwt, c.body + " ", c.url, c.now_s)) << "other body";
  EXPECT_FALSE(verify("sig_current", jwt, c.body, c.url + "&b=2", c.now_s)) << "other URL";
  EXPECT_FALSE(verify("sig_current", jwt, c.body, c.url, c.now_s + 300)) << "expired: exp is not after now";
  EXPECT_FALSE(verify("sig_current", jwt, c.body, c.url, c.now_s - 1)) << "not yet valid";
  jwt[jwt.size() / 2] = jwt[jwt.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(verify("sig_current", jwt, c.body, c.url, c.now_s)) << "tampered";
}

TEST(QstashSignature, HasTheClaimsQstashSends) {
  signature_claims c{"https://example.com/api", "", 1'700'000'000, "jwt_1"};
  std::string jwt = sign("k", c);
  auto d1 = jwt.find('.'), d2 = jwt.rfind('.');
  ASSERT_NE(d1, d2);
  // Decode the payload by hand: base64url of JSON.
  std::string payload = jwt.substr(d1 + 1, d2 - d1 - 1);
  for (char& ch : payload) ch = ch == '-' ? '+' : ch == '_' ? '/' : ch;
  while (payload.size() % 4) payload += '=';
  static const std::string b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  int val = 0, bits = -8;
  for (char ch : payload) {
    if (ch == '=') break;
    val = (val << 6) + static_cast<int>(b64.find(ch));
    bits += 6;
    if (bits >= 0) {
      bytes += static_cast<char>((val >> bits) & 0xFF);
      bits -= 8;
    }
  }
  auto j = nlohmann::json::parse(bytes);
  EXPECT_EQ(j["iss"], "Upstash");
  EXPECT_EQ(j["sub"], "https://example.com/api");
  EXPECT_EQ(j["iat"], 1'700'000'000);
  EXPECT_EQ(j["nbf"], 1'700'000'000);
  EXPECT_EQ(j["exp"], 1'700'000'300);
  EXPECT_EQ(j["jti"], "jwt_1");
  // SHA-256 of the empty string, base64url without padding.
  EXPECT_EQ(j["body"], "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
}

TEST(QstashBase64url, HasNoPaddingAndTheUrlAlphabet) {
  EXPECT_EQ(base64url(""), "");
  EXPECT_EQ(base64url("f"), "Zg");
  EXPECT_EQ(base64url("fo"), "Zm8");
  EXPECT_EQ(base64url("foo"), "Zm9v");
  EXPECT_EQ(base64url("\xfb\xff"), "-_8");
}

TEST(QstashIds, MessageIdsAreJobIdsWithAnotherPrefix) {
  std::string job = "job_01JD0000000000000000000000";
  EXPECT_EQ(message_id(job), "msg_01JD0000000000000000000000");
  EXPECT_EQ(job_id_of_message(message_id(job)), job);
  EXPECT_EQ(job_id_of_message("msg_nope"), "");
  EXPECT_EQ(job_id_of_message(job), "");
  EXPECT_EQ(new_signing_key().size(), 32u);
  EXPECT_NE(new_signing_key(), new_signing_key());
}

TEST(QstashOptions, RoundTripAndSkipTheUnknown) {
  options o;
  o.retry_delay = "1000";
  o.label = "l";
  o.callback_retries = 0;
  o.callback_headers = {{"X-A", "1"}};
  o.not_before_ms = 12;
  auto back = decode_options(encode_options(o));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->retry_delay, "1000");
  EXPECT_EQ(back->label, "l");
  ASSERT_TRUE(back->callback_retries);
  EXPECT_EQ(*back->callback_retries, 0u);
  EXPECT_FALSE(back->failure_callback_retries);
  EXPECT_EQ(back->callback_headers, o.callback_headers);
  EXPECT_EQ(back->not_before_ms, 12);
  EXPECT_EQ(encode_options({}), "{}");
  EXPECT_TRUE(decode_options(R"({"later":1})"));
  EXPECT_FALSE(decode_options("[]"));
  EXPECT_FALSE(decode_options("nope"));
}

}  // namespace
}  // namespace fetchrelay::qstash::qstash_test
