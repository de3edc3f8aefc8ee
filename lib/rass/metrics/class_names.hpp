// Class names for the per-class tables of rass-eval-miou: built-in sets with
// the exact names and order of mmsegmentation's dataset classes, or a file.
#pragma once
#include <string>
#include <vector>

namespace rass::metrics {

// The built-in sets: "ade20k" (150 names of mmseg's ADE20KDataset, in its
// order, with 'bed ' keeping mmseg's trailing space), "cityscapes" (the 19
// train ids of CityscapesDataset), "voc" (the 21 classes of PascalVOCDataset,
// background first).
const std::vector<std::string>& builtin_class_sets();
// The names of a built-in set, or nullptr when `set` is not one.
const std::vector<std::string>* builtin_class_names(const std::string& set);

// --classes: a built-in set name, else a file with one name per line (kept as
// written, spaces included; a trailing '\r' is dropped; empty lines at the end
// are ignored). Throws Error(bad_input) naming the file for an unreadable
// file, an empty name inside it, or a file without names.
std::vector<std::string> load_class_names(const std::string& spec);

}  // namespace rass::metrics
