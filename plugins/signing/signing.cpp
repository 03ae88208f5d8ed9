// Built-in plugin `signing` (DESIGN §5): signs each attempt so the target can check it came from
// this relay, unchanged.
//
//   standard-webhooks  webhook-id: the job id; webhook-timestamp: the attempt's time (s);
//                      webhook-signature: "v1,<base64 HMAC-SHA256 of id.timestamp.body>", one per
//                      secret, space-separated (key rotation). Secrets are whsec_<base64 key>.
//   hmac-sha256        `header`: the hex HMAC-SHA256 of the body with the first secret (a whsec_
//                      secret is decoded; any other string is the key as is).
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <fetchrelay/plugin.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace {

/// One key's HMAC-SHA256, set up once. OpenSSL 3's one-shot HMAC() looks the algorithm up by
/// name on every call: ~21k instructions, two thirds of a signed attempt's cost. Each signature
/// works on a copy of the keyed context, which stays as it was set up.
class hmac_key {
 public:
  explicit hmac_key(const std::string& key) {
    mac_.reset(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
    if (mac_) keyed_.reset(EVP_MAC_CTX_new(mac_.get()));
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
    if (!keyed_ ||
        EVP_MAC_init(keyed_.get(), reinterpret_cast<const unsigned char*>(key.data()), key.size(), params) != 1) {
      throw std::runtime_error("OpenSSL cannot make an HMAC-SHA256 key");
    }
  }

  std::string sign(std::string_view data) const {
    std::unique_ptr<EVP_MAC_CTX, free_ctx> c(EVP_MAC_CTX_dup(keyed_.get()));
    unsigned char out[EVP_MAX_MD_SIZE];
    std::size_t n = 0;
    if (!c || EVP_MAC_update(c.get(), reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
        EVP_MAC_final(c.get(), out, &n, sizeof out) != 1) {
      throw std::runtime_error("OpenSSL failed to compute an HMAC-SHA256");
    }
    return std::string(reinterpret_cast<char*>(out), n);
  }

 private:
  struct free_mac {
    void operator()(EVP_MAC* m) const { EVP_MAC_free(m); }
  };
  struct free_ctx {
    void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
  };
  std::unique_ptr<EVP_MAC, free_mac> mac_;
  std::unique_ptr<EVP_MAC_CTX, free_ctx> keyed_;
};

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

/// Strict base64 decoding (padding required); nullopt if it is not base64.
std::optional<std::string> unbase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t pad = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

std::string hex(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

class signing final : public fetchrelay::sdk::plugin {
 public:
  signing(const fetchrelay::sdk::host& host, std::string_view config) : host_(host) {
    host_.describe("signed", "Attempts signed.");
    auto c = nlohmann::json::parse(config);
    standard_ = c.at("scheme").get<std::string>() == "standard-webhooks";
    header_ = c.at("header").get<std::string>();
    const auto& secrets = c.at("secrets");
    for (std::size_t i = 0; i < secrets.size(); ++i) {
      std::string s = secrets[i].get<std::string>();
      // Never put a secret in a message: it would reach the logs.
      std::string where = "secrets[" + std::to_string(i) + "]";
      if (s.rfind("whsec_", 0) == 0) {
        auto key = unbase64(std::string_view(s).substr(6));
        if (!key || key->empty()) throw std::runtime_error(where + ": the part after whsec_ is not base64");
        keys_.emplace_back(*key);
      } else if (standard_) {
        throw std::runtime_error(where + ": standard-webhooks secrets look like whsec_<base64>");
      } else {
        keys_.emplace_back(s);
      }
    }
  }

  fetchrelay::sdk::verdict on_attempt(fetchrelay::sdk::attempt& a) override {
    if (!standard_) {
      a.set_header(header_, hex(keys_.front().sign(a.body())));
      host_.count("signed");
      return fetchrelay::sdk::verdict::proceed();
    }
    std::string id(a.job_id());
    std::string ts = std::to_string(host_.now_ms() / 1000);
    std::string content = id + "." + ts + ".";
    content.append(a.body());
    std::string sig;
    for (const auto& k : keys_) sig += (sig.empty() ? "v1," : " v1,") + base64(k.sign(content));
    a.set_header("webhook-id", id);
    a.set_header("webhook-timestamp", ts);
    a.set_header("webhook-signature", sig);
    host_.count("signed");
    return fetchrelay::sdk::verdict::proceed();
  }

 private:
  fetchrelay::sdk::host host_;
  bool standard_ = true;
  std::string header_;
  std::vector<hmac_key> keys_;
};

}  // namespace

FETCHRELAY_PLUGIN(signing, "signing", R"({
  "type": "object", "additionalProperties": false, "required": ["secrets"],
  "properties": {
    "scheme": {"type": "string", "enum": ["standard-webhooks", "hmac-sha256"], "default": "standard-webhooks",
               "description": "Standard Webhooks v1, or a hex HMAC-SHA256 of the body in `header`."},
    "secrets": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1},
                "description": "Signing secrets (whsec_<base64>); every one signs, so receivers can rotate."},
    "header": {"type": "string", "minLength": 1, "default": "X-Signature",
               "description": "hmac-sha256: the header carrying the signature."}
  }
})")
