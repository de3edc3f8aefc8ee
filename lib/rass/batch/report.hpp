// Report writing shared by every tool, so numbers, CSV and stdout behave the
// same everywhere:
//   - JSON has no NaN or infinity: a value that is not finite is written as
//     null, and the object gets "reasons": {"<field>": "<why>"};
//   - CSV fields are quoted by one function (RFC 4180);
//   - at most one report may go to stdout (the others need file names);
//   - reports are written whole and checked: a failed write (full disk, closed
//     stdout, file-size limit) is Error(runtime), exit 1, never a silent 0.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace rass::batch {

// obj[key] = v, or null with obj["reasons"][key] = `why` (and the value's kind:
// "NaN: ..." / "inf: ...") when v is not finite.
void put_number(nlohmann::ordered_json& obj, const std::string& key, double v, const std::string& why);

// Shortest text that reads back as the same double; "nan", "inf", "-inf".
std::string format_number(double v);
// Fixed-point with `decimals`; "nan", "inf", "-inf".
std::string format_fixed(double v, int decimals);

// One CSV field: quoted when it holds a comma, quote, CR/LF or edge spaces.
std::string csv_field(const std::string& s);
std::string csv_row(const std::vector<std::string>& fields);  // with '\n'

// Throws Error(usage) when more than one of the named reports would use stdout.
void claim_stdout(const std::vector<std::pair<std::string, bool>>& users);

// Throws Error(usage) when more than one reader would take stdin: the
// positional `inputs` that are "-" and the named flags ({"--replay -",
// replay == "-"}, ...). The second reader would find stdin consumed and fail
// with a misleading message after the first one's work.
void claim_stdin(const std::vector<std::string>& inputs, const std::vector<std::pair<std::string, bool>>& flags);

// Writes a report: "-" to stdout (checked, flushed), else atomically (file.hpp).
void write_report(const std::string& path, const std::string& text);

}  // namespace rass::batch
