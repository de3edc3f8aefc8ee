#include "rass/batch/report.hpp"

#include <cmath>
#include <cstdio>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"

namespace rass::batch {

void put_number(nlohmann::ordered_json& obj, const std::string& key, double v, const std::string& why) {
  if (std::isfinite(v)) {
    obj[key] = v;
    return;
  }
  obj[key] = nullptr;
  const std::string kind = std::isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf";
  obj["reasons"][key] = why.empty() ? kind : kind + ": " + why;
}

std::string format_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return nlohmann::json(v).dump();
}

std::string format_fixed(double v, int decimals) {
  if (!std::isfinite(v)) return format_number(v);
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

std::string csv_field(const std::string& s) {
  bool quote = !s.empty() && (s.front() == ' ' || s.back() == ' ');
  for (char c : s)
    if (c == ',' || c == '"' || c == '\n' || c == '\r') quote = true;
  if (!quote) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string csv_row(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + csv_field(fields[i]);
  return out + "\n";
}

void claim_stdout(const std::vector<std::pair<std::string, bool>>& users) {
  std::string names;
  int n = 0;
  for (const auto& [name, uses] : users)
    if (uses) names += (n++ ? ", " : "") + name;
  if (n > 1) throw_usage("only one report can go to stdout, but " + names + " all would: give the others file names");
}

void claim_stdin(const std::vector<std::string>& inputs, const std::vector<std::pair<std::string, bool>>& flags) {
  std::vector<std::string> names;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i] == "-") names.push_back("input " + std::to_string(i + 1) + " (-)");
  for (const auto& [name, uses] : flags)
    if (uses) names.push_back(name);
  if (names.size() > 1) throw_usage("only one of " + names[0] + " and " + names[1] + " can read stdin");
}

void write_report(const std::string& path, const std::string& text) {
  // stdio is flushed first so nothing printed earlier is reordered after the report.
  if (path == "-" && std::fflush(stdout) != 0) throw_runtime("<stdout>: write failed");
  write_file_atomic(path, text);
}

}  // namespace rass::batch
