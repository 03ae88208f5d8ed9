#include "config/yaml_source.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdlib>
#include <regex>
#include <string_view>

#include "core/text.h"

namespace fetchrelay::config {
namespace {

bool is_name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

json type_plain_scalar(const std::string& s) {
  if (s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  static const std::regex integer_re("[-+]?[0-9]+");
  static const std::regex number_re("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  if (std::regex_match(s, integer_re)) {
    long long v = 0;
    const char* begin = s.data() + (s[0] == '+' ? 1 : 0);
    auto [ptr, ec] = std::from_chars(begin, s.data() + s.size(), v);
    if (ec == std::errc() && ptr == s.data() + s.size()) return v;
    return s;  // out of range: leave it to the schema to reject
  }
  if (std::regex_match(s, number_re)) return std::strtod(s.c_str(), nullptr);
  return s;
}

class converter {
 public:
  converter(const env_lookup& env, std::vector<config_error>& errors) : env_(env), errors_(errors) {}

  json convert(const YAML::Node& node, const std::string& path) {
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return nullptr;
      case YAML::NodeType::Scalar:
        return scalar(node, path);
      case YAML::NodeType::Sequence: {
        json out = json::array();
        size_t i = 0;
        for (const auto& item : node) out.push_back(convert(item, index_path(path, i++)));
        return out;
      }
      case YAML::NodeType::Map: {
        json out = json::object();
        for (const auto& kv : node) {
          if (!kv.first.IsScalar()) {
            errors_.push_back({path, "keys must be plain strings"});
            continue;
          }
          std::string key = kv.first.Scalar();
          std::string child = join_path(path, key);
          if (out.contains(key)) {
            errors_.push_back({child, "duplicate key"});
            continue;
          }
          out[key] = convert(kv.second, child);
        }
        return out;
      }
    }
    return nullptr;
  }

 private:
  json scalar(const YAML::Node& node, const std::string& path) {
    auto expanded = expand_env(node.Scalar(), env_);
    if (!expanded) {
      errors_.push_back({path, expanded.error().message()});
      return nullptr;
    }
    // yaml-cpp tags quoted scalars "!" and plain ones "?".
    if (node.Tag() == "!") return *expanded;
    return type_plain_scalar(*expanded);
  }

  const env_lookup& env_;
  std::vector<config_error>& errors_;
};

}  // namespace

env_lookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

result<std::string> expand_env(std::string_view text, const env_lookup& env) {
  static constexpr std::string_view forms = "(write ${NAME} or ${NAME:-default})";
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c != '$') {
      out += c;
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (i + 1 >= text.size() || text[i + 1] != '{') {
      out += c;  // a lone '$' is literal
      continue;
    }
    size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      return invalid_argument("unterminated \"${\" " + std::string(forms));
    }
    std::string_view inner = text.substr(i + 2, close - i - 2);
    size_t n = 0;
    while (n < inner.size() && is_name_char(inner[n])) ++n;
    std::string name(inner.substr(0, n));
    if (name.empty() || !is_name_start(name[0])) {
      return invalid_argument("invalid variable name in \"${" + std::string(inner) +
                              "}\": use letters, digits and _, not starting with a digit");
    }
    std::optional<std::string> fallback;
    std::string_view rest = inner.substr(n);
    if (!rest.empty()) {
      if (rest.substr(0, 2) != ":-") {
        return invalid_argument("unsupported form \"${" + std::string(inner) + "}\" " +
                                std::string(forms));
      }
      fallback = std::string(rest.substr(2));
    }
    auto value = env(name);
    if (value && !is_valid_utf8(*value)) {
      return invalid_argument("environment variable " + name + " is not valid UTF-8");
    }
    if (value && (!value->empty() || !fallback)) {
      out += *value;
    } else if (fallback) {
      out += *fallback;  // like the shell's :- an empty variable also takes the default
    } else {
      return invalid_argument("environment variable " + name +
                              " is not set and has no default (write ${" + name +
                              ":-default} to give one)");
    }
    i = close;
  }
  return out;
}

yaml_document parse_yaml(const std::string& text, const std::string& source, const env_lookup& env) {
  yaml_document doc;
  // YAML text is Unicode; yaml-cpp passes stray bytes through into strings, where they would
  // break every later JSON rendering. Refuse them here, at their line and column.
  if (!is_valid_utf8(text)) {
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i < text.size();) {
      auto lead = static_cast<unsigned char>(text[i]);
      std::size_t len = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
      if (!is_valid_utf8(std::string_view(text).substr(i, len))) break;  // the first bad byte
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
      i += len;
    }
    doc.errors.push_back({source + ":" + std::to_string(line) + ":" + std::to_string(column),
                          "not valid UTF-8 (a config file must be UTF-8 text)"});
    doc.value = nullptr;
    return doc;
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    std::string where = source;
    if (!e.mark.is_null()) {
      where += ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
    }
    doc.errors.push_back({where, "invalid YAML: " + e.msg});
    doc.value = nullptr;
    return doc;
  }
  converter c(env, doc.errors);
  doc.value = c.convert(root, "");
  return doc;
}

}  // namespace fetchrelay::config
