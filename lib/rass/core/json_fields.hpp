// Typed reads of a JSON object's fields (a model folder's config.json), each
// error naming the file and the key. nlohmann's value() truncated
// "layers_per_block": 1.5 to 1 without a word (diffusers fails on it), and
// a string where a number belongs said only "type must be number, but is
// string", with no key named.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rass {

class JsonFields {
 public:
  // j: the parsed file (an object); path: the file, named in every error.
  JsonFields(const nlohmann::json& j, std::string path);

  // Present and not null (a null takes the default where the reader says so).
  bool has(const std::string& key) const;
  // A missing key gives the fallback; a present one of the wrong type is
  // Error(bad_input) "<path>: <key> = <value> is not <kind>". integer()
  // takes whole JSON integers only (1.0 and 1e0 are refused, as Python's
  // range() refuses them); number() takes either.
  int64_t integer(const std::string& key, int64_t fallback) const;
  double number(const std::string& key, double fallback) const;
  bool flag(const std::string& key, bool fallback) const;
  std::string text(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> integers(const std::string& key, const std::vector<int64_t>& fallback) const;
  std::vector<std::string> texts(const std::string& key, const std::vector<std::string>& fallback) const;

  // "<path>: <key> = <value, shortened> is not <kind>" (exit 3).
  [[noreturn]] void wrong_type(const std::string& key, const nlohmann::json& v, const std::string& kind) const;

 private:
  const nlohmann::json& j_;
  std::string path_;
};

}  // namespace rass
