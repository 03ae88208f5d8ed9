#include "config/schema.h"

#include <algorithm>
#include <set>

#include "core/net.h"
#include "core/text.h"
#include "core/units.h"

namespace fetchrelay::config {
namespace {

std::string number_text(const json& n) {
  if (n.is_number_integer()) return std::to_string(n.get<long long>());
  std::string s = n.dump();
  return s;
}

/// "an integer ≥ 1", "a number between 0 and 1", "a string".
std::string type_phrase(const json& schema, const std::string& type) {
  if (type == "integer" || type == "number") {
    std::string base = type == "integer" ? "an integer" : "a number";
    bool has_min = schema.contains("minimum");
    bool has_max = schema.contains("maximum");
    if (has_min && has_max) {
      return base + " between " + number_text(schema["minimum"]) + " and " +
             number_text(schema["maximum"]);
    }
    if (has_min) return base + " ≥ " + number_text(schema["minimum"]);
    if (has_max) return base + " ≤ " + number_text(schema["maximum"]);
    return base;
  }
  if (type == "string") {
    std::string format = schema.value("format", "");
    if (format == "duration") return "a duration such as 500ms, 30s or 1d2h";
    if (format == "size") return "a size such as 512KiB or 1MiB";
    if (format == "listen-address") return "an address such as 127.0.0.1:8080 or [::1]:0";
    if (format == "cidr") return "a CIDR block such as 10.0.0.0/8 or ::1/128";
    if (format == "absolute-url") return "an absolute http(s) URL";
    return "a string";
  }
  if (type == "boolean") return "true or false";
  if (type == "object") return "a mapping";
  if (type == "array") return "a list";
  if (type == "null") return "null";
  return type;
}

std::vector<std::string> schema_types(const json& schema) {
  std::vector<std::string> out;
  if (!schema.contains("type")) return out;
  const json& t = schema["type"];
  if (t.is_string()) {
    out.push_back(t.get<std::string>());
  } else if (t.is_array()) {
    for (const auto& x : t) out.push_back(x.get<std::string>());
  }
  return out;
}

bool has_type(const json& value, const std::string& type) {
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  if (type == "string") return value.is_string();
  if (type == "integer") return value.is_number_integer();
  if (type == "number") return value.is_number();
  if (type == "boolean") return value.is_boolean();
  if (type == "null") return value.is_null();
  return false;
}

std::string shown(const json& schema, const json& value) {
  if (schema.value("secret", false)) return "<redacted>";
  return render_value(value);
}

std::string expected_phrase(const json& schema, const std::vector<std::string>& types) {
  std::string out;
  for (size_t i = 0; i < types.size(); ++i) {
    if (i > 0) out += " or ";
    out += type_phrase(schema, types[i]);
  }
  return out;
}

/// Levenshtein distance, for "did you mean".
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1);
  std::vector<size_t> cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string unknown_key_message(const json& properties, const std::string& key) {
  std::string best;
  size_t best_distance = 3;  // suggest only close matches
  std::string allowed;
  for (auto it = properties.begin(); it != properties.end(); ++it) {
    if (!allowed.empty()) allowed += ", ";
    allowed += it.key();
    size_t d = edit_distance(key, it.key());
    if (d < best_distance) {
      best_distance = d;
      best = it.key();
    }
  }
  if (!best.empty()) return "unknown key; did you mean \"" + best + "\"?";
  if (allowed.empty()) return "unknown key (no keys are allowed here)";
  return "unknown key (allowed: " + allowed + ")";
}

/// Checks the string formats; returns an empty string when the value is fine.
std::string format_problem(const std::string& format, const std::string& text) {
  if (format == "duration") {
    auto r = parse_duration(text);
    return r ? "" : r.error().message();
  }
  if (format == "size") {
    auto r = parse_size(text);
    return r ? "" : r.error().message();
  }
  if (format == "listen-address") {
    auto r = parse_listen_address(text);
    return r ? "" : r.error().message();
  }
  if (format == "cidr") {
    auto r = parse_cidr(text);
    return r ? "" : r.error().message();
  }
  if (format == "absolute-url") {
    if (text.rfind("http://", 0) == 0 || text.rfind("https://", 0) == 0) return "";
    return "must start with http:// or https://";
  }
  return "";
}

}  // namespace

std::string config_error::to_string() const {
  if (path.empty()) return message;
  return path + ": " + message;
}

std::string join_path(const std::string& parent, const std::string& key) {
  if (parent.empty()) return key;
  return parent + "." + key;
}

std::string index_path(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

std::string render_value(const json& value) {
  if (value.is_object()) return "a mapping";
  if (value.is_array()) return "a list";
  if (value.is_string()) {
    std::string s = value.get<std::string>();
    if (s.size() > 80) s = s.substr(0, 77) + "...";
    return safe_dump(json(s));
  }
  return safe_dump(value);
}

std::string check_schema(const json& schema, const std::string& path) {
  auto at = [&](const std::string& keyword) { return (path.empty() ? "" : path + ".") + keyword; };
  if (!schema.is_object()) return (path.empty() ? std::string("the schema") : path) + " must be a JSON object";
  static const std::set<std::string> types = {"object", "array", "string", "integer", "number", "boolean", "null"};
  static const std::set<std::string> formats = {"duration", "size", "listen-address", "cidr", "absolute-url"};
  static const std::set<std::string> ignored = {"description", "default", "title", "examples", "$schema", "$id", "$comment"};
  for (auto it = schema.begin(); it != schema.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (k == "type") {
      bool ok = v.is_string() ? types.count(v.get<std::string>()) == 1 : v.is_array() && !v.empty();
      if (v.is_array()) {
        for (const auto& t : v) ok = ok && t.is_string() && types.count(t.get<std::string>()) == 1;
      }
      if (!ok) return at(k) + " must be one of object, array, string, integer, number, boolean, null, or a list of them";
    } else if (k == "properties") {
      if (!v.is_object()) return at(k) + " must be a mapping of schemas";
      for (auto p = v.begin(); p != v.end(); ++p) {
        if (auto e = check_schema(p.value(), at(k) + "." + p.key()); !e.empty()) return e;
      }
    } else if (k == "items") {
      if (auto e = check_schema(v, at(k)); !e.empty()) return e;
    } else if (k == "additionalProperties") {
      if (v.is_boolean()) continue;
      if (auto e = check_schema(v, at(k)); !e.empty()) return e;
    } else if (k == "required") {
      bool ok = v.is_array() && std::all_of(v.begin(), v.end(), [](const json& r) { return r.is_string(); });
      if (!ok) return at(k) + " must be a list of names";
    } else if (k == "enum") {
      if (!v.is_array() || v.empty()) return at(k) + " must be a non-empty list";
    } else if (k == "minimum" || k == "maximum") {
      if (!v.is_number()) return at(k) + " must be a number";
    } else if (k == "minItems" || k == "minLength" || k == "maxLength") {
      if (!v.is_number_unsigned()) return at(k) + " must be an integer ≥ 0";
    } else if (k == "format") {
      if (!v.is_string() || formats.count(v.get<std::string>()) == 0) {
        return at(k) + " must be one of duration, size, listen-address, cidr, absolute-url";
      }
    } else if (k == "secret") {
      if (!v.is_boolean()) return at(k) + " must be true or false";
    } else if (ignored.count(k) == 0) {
      return at(k) + ": unknown keyword (the host understands type, properties, required, additionalProperties, "
                     "enum, minimum, maximum, items, minItems, minLength, maxLength, format, secret, default, description)";
    }
  }
  return "";
}

void validate(const json& schema, const json& value, const std::string& path,
              std::vector<config_error>& errors) {
  auto types = schema_types(schema);
  if (!types.empty()) {
    bool ok = std::any_of(types.begin(), types.end(),
                          [&](const std::string& t) { return has_type(value, t); });
    if (!ok) {
      std::string hint;
      std::string format = schema.value("format", "");
      if (std::find(types.begin(), types.end(), "string") != types.end() &&
          (value.is_number() || value.is_boolean())) {
        if (format == "duration" && value.is_number_integer()) {
          hint = " (add a unit, e.g. 30s)";
        } else if (format == "size" && value.is_number_integer()) {
          hint = " (add a unit, e.g. 1048576B or 1MiB)";
        } else {
          hint = " (quote it to make it a string)";
        }
      }
      errors.push_back({path, "expected " + expected_phrase(schema, types) + ", got " +
                                  shown(schema, value) + hint});
      return;
    }
  }

  if (schema.contains("enum")) {
    const json& options = schema["enum"];
    if (std::find(options.begin(), options.end(), value) == options.end()) {
      std::string list;
      for (const auto& o : options) {
        if (!list.empty()) list += ", ";
        list += o.is_string() ? o.get<std::string>() : safe_dump(o);
      }
      errors.push_back({path, "expected one of " + list + "; got " + shown(schema, value)});
      return;
    }
  }

  if (value.is_number()) {
    double v = value.get<double>();
    bool low = schema.contains("minimum") && v < schema["minimum"].get<double>();
    bool high = schema.contains("maximum") && v > schema["maximum"].get<double>();
    if (low || high) {
      std::string type = value.is_number_integer() ? "integer" : "number";
      if (std::find(types.begin(), types.end(), "number") != types.end()) type = "number";
      errors.push_back(
          {path, "expected " + type_phrase(schema, type) + ", got " + shown(schema, value)});
      return;
    }
  }

  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    if (schema.contains("minLength") && s.size() < schema["minLength"].get<size_t>()) {
      size_t n = schema["minLength"].get<size_t>();
      errors.push_back({path, n == 1 ? std::string("must not be empty")
                                     : "must be at least " + std::to_string(n) + " characters"});
      return;
    }
    if (schema.contains("maxLength") && s.size() > schema["maxLength"].get<size_t>()) {
      errors.push_back({path, "must be at most " +
                                  std::to_string(schema["maxLength"].get<size_t>()) +
                                  " characters"});
      return;
    }
    if (schema.contains("format")) {
      std::string problem = format_problem(schema["format"].get<std::string>(), s);
      if (!problem.empty()) {
        errors.push_back({path, "expected " + type_phrase(schema, "string") + ", got " +
                                    shown(schema, value) + ": " + problem});
        return;
      }
    }
  }

  if (value.is_array()) {
    if (schema.contains("minItems") && value.size() < schema["minItems"].get<size_t>()) {
      size_t n = schema["minItems"].get<size_t>();
      errors.push_back({path, n == 1 ? std::string("must have at least one entry")
                                     : "must have at least " + std::to_string(n) + " entries"});
    }
    if (schema.contains("items")) {
      for (size_t i = 0; i < value.size(); ++i) {
        validate(schema["items"], value[i], index_path(path, i), errors);
      }
    }
  }

  if (value.is_object()) {
    static const json empty_object = json::object();
    const json& properties = schema.contains("properties") ? schema["properties"] : empty_object;
    if (schema.contains("required")) {
      for (const auto& r : schema["required"]) {
        auto key = r.get<std::string>();
        if (!value.contains(key)) errors.push_back({join_path(path, key), "is required but missing"});
      }
    }
    for (auto it = value.begin(); it != value.end(); ++it) {
      std::string child = join_path(path, it.key());
      if (properties.contains(it.key())) {
        validate(properties[it.key()], it.value(), child, errors);
        continue;
      }
      if (schema.contains("additionalProperties")) {
        const json& extra = schema["additionalProperties"];
        if (extra.is_boolean()) {
          if (!extra.get<bool>()) errors.push_back({child, unknown_key_message(properties, it.key())});
        } else {
          validate(extra, it.value(), child, errors);
        }
      }
    }
  }
}

void apply_defaults(const json& schema, json& value) {
  if (value.is_object() && schema.contains("properties")) {
    const json& properties = schema["properties"];
    for (auto it = properties.begin(); it != properties.end(); ++it) {
      if (!value.contains(it.key()) && it.value().contains("default")) {
        value[it.key()] = it.value()["default"];
      }
      if (value.contains(it.key())) apply_defaults(it.value(), value[it.key()]);
    }
  }
  if (value.is_object() && schema.contains("additionalProperties") &&
      schema["additionalProperties"].is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (schema.contains("properties") && schema["properties"].contains(it.key())) continue;
      apply_defaults(schema["additionalProperties"], it.value());
    }
  }
  if (value.is_array() && schema.contains("items")) {
    for (auto& item : value) apply_defaults(schema["items"], item);
  }
}

}  // namespace fetchrelay::config
