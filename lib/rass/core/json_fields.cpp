#include "rass/core/json_fields.hpp"

#include <cmath>

#include "rass/core/error.hpp"
#include "rass/core/json_file.hpp"

namespace rass {

JsonFields::JsonFields(const nlohmann::json& j, std::string path) : j_(j), path_(std::move(path)) {
  if (!j_.is_object()) throw_bad_input(path_, "is not a JSON object ({...})");
}

bool JsonFields::has(const std::string& key) const {
  const auto it = j_.find(key);
  return it != j_.end() && !it->is_null();
}

void JsonFields::wrong_type(const std::string& key, const nlohmann::json& v, const std::string& kind) const {
  throw_bad_input(path_, key + " = " + json_excerpt(v) + " is not " + kind);
}

int64_t JsonFields::integer(const std::string& key, int64_t fallback) const {
  const auto it = j_.find(key);
  if (it == j_.end()) return fallback;
  // 1e10 or 64.0: "is not a whole number" would read as nonsense.
  if (it->is_number_float() && std::isfinite(it->get<double>()) && std::floor(it->get<double>()) == it->get<double>())
    wrong_type(key, *it, "a whole number written as one (JSON reads an exponent or a decimal point as a float: "
                         "write the digits alone)");
  if (!it->is_number_integer()) wrong_type(key, *it, "a whole number");
  if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(INT64_MAX)) wrong_type(key, *it, "a 64-bit whole number");
  return it->get<int64_t>();
}

double JsonFields::number(const std::string& key, double fallback) const {
  const auto it = j_.find(key);
  if (it == j_.end()) return fallback;
  if (!it->is_number()) wrong_type(key, *it, "a number");
  return it->get<double>();
}

bool JsonFields::flag(const std::string& key, bool fallback) const {
  const auto it = j_.find(key);
  if (it == j_.end()) return fallback;
  if (!it->is_boolean()) wrong_type(key, *it, "true or false");
  return it->get<bool>();
}

std::string JsonFields::text(const std::string& key, const std::string& fallback) const {
  const auto it = j_.find(key);
  if (it == j_.end()) return fallback;
  if (!it->is_string()) wrong_type(key, *it, "a string");
  return it->get<std::string>();
}

std::vector<int64_t> JsonFields::integers(const std::string& key, const std::vector<int64_t>& fallback) const {
  const auto it = j_.find(key);
  if (it == j_.end()) return fallback;
  if (!it->is_array()) wrong_type(key, *it, "a list of whole numbers");
  std::vector<int64_t> out;
  for (const nlohmann::json& e : *it) {
    if (!e.is_number_integer() || (e.is_number_unsigned() && e.get<uint64_t>() > uint64_t(INT64_MAX)))
      wrong_type(key, *it, "a list of whole numbers");
    out.push_back(e.get<int64_t>());
  }
  return out;
}

std::vector<std::string> JsonFields::texts(const std::string& key, const std::vector<std::string>& fallback) const {
  const auto it = j_.find(key);
  if (it == j_.end()) return fallback;
  if (!it->is_array()) wrong_type(key, *it, "a list of strings");
  std::vector<std::string> out;
  for (const nlohmann::json& e : *it) {
    if (!e.is_string()) wrong_type(key, *it, "a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace rass
