// The inputs of every batch tool: files, directories, manifests and `-`, turned
// into items with one key rule, optionally paired across two roles (PRED/GT,
// LQ/HQ). A bad source line or a duplicate key becomes a bad item that carries
// its message; it never ends the run (the runner counts it, run.hpp).
//
// The item key (what names outputs, seeds the keyed RNG and pairs two trees):
//   - a file under a directory input D: its path relative to D without the
//     extension ("sub/a.png" -> "sub/a"), or without the role's --suffix;
//   - a file named on its own (on the command line, or by a manifest row
//     without a "key" field: the row's first path): its stem ("x/a.png" -> "a");
//     `-`: "stdin"; a manifest row's "key" field when it has one.
// That is one rule: the path relative to the directory the file was found
// in, without extension; a file named on its own was found in its own folder.
//   - with match_stem (`--match-stem`), files under directories are keyed by
//     their file name alone, so trees with different layouts pair up.
// Two items with one key: the first in input order is kept, each later one is
// a bad item naming both files.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "rass/core/shard.hpp"

namespace rass::batch {

// One role of an item ("pred", "gt", "hq"): the manifest fields tried in order
// for its path (JSON lines), or its column (TSV: role i is column i).
struct Role {
  std::string name;
  std::vector<std::string> fields;
  bool required = true;   // a manifest row without it is a bad item
  std::string suffix;     // directory listings: file-name end taken and stripped for the key ("" = image extension)
};

struct InputSpec {
  std::vector<Role> roles;            // one (single items) or two (pairs)
  std::vector<std::string> inputs;    // one role: files, directories, "-"; two roles: A B (two directories or two files)
  std::string manifest;               // JSON lines or TSV ("-" = stdin)
  std::function<bool(const std::string&)> keep;  // which files of a directory are inputs (default: image extensions)
  std::vector<std::string> skip_dirs;  // not entered when listing (e.g. an output directory)
  bool match_stem = false;
  bool allow_stdin = true;            // may "-" be an input (a one-image source)?
  // Bytes the tool appends to a key's last part in its longest output name
  // (".png": 4, "_v9.json": 8); keys whose names would pass 255 bytes are
  // bad items before any work (key_problem). 0: the tool names no files by key.
  size_t name_room = 0;
  // What the inputs are, for messages: "image" ('-' reads one image) and the
  // files a directory gives ("" = the image extensions, or the role's suffix).
  std::string noun = "image";
  std::string listed;  // e.g. "caption files: .caption .txt"
};

struct Item {
  std::string key;
  std::vector<std::string> paths;  // one per role ("" where absent)
  std::string error;               // set: a bad item, with a message naming the file or manifest line
  std::string name() const;        // the first non-empty path (for messages), or the key
};

// Lists and pairs the inputs. Directory listings are sorted by path; items
// keep the order in which their sources were given (manifest rows in file order).
// Throws Error(usage) for bad combinations (two roles without exactly A B or a
// manifest, a directory paired with a file), Error(bad_input) when a directory
// or manifest cannot be read or nothing at all was found (empty input is an error).
std::vector<Item> collect_items(const InputSpec& spec);

// Why `key` cannot name outputs ("" when it can): empty, absolute, with a
// '..' component or a last component '.', a NUL, newline, CR or tab, or not
// UTF-8; with name_room > 0 also a folder part past 255 bytes (NAME_MAX) or a
// last part that with name_room more bytes passes it (the write would fail
// after the work). Such items are bad items.
std::string key_problem(const std::string& key, size_t name_room = 0);
bool valid_utf8(const std::string& s);

// One shard of `all`: items are ordered by key (so every run of a sharded job
// splits the same way, whatever the input order) and position i of that
// order belongs to `shard` when shard.contains(i). `input_index` keeps each
// item's position in `all`, the input order that per-item --tags lines follow.
struct ShardItems {
  std::vector<Item> items;
  std::vector<size_t> input_index;
};
ShardItems shard_items(const std::vector<Item>& all, const Shard& shard);

// The key of a relative path: without the extension, or without `suffix` when given.
std::string key_of_relative(const std::string& rel, const std::string& suffix = "");

}  // namespace rass::batch
