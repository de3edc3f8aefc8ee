// The embedded default model: the mini world's model (make mini-model), used
// by every network tool when no --model is given, so each runs end to end on
// a fresh machine. It is a folder of small safetensors + configs:
//   <root>/base/     the pretrained backbone (SD layout): rass-model sample
//   <root>/restore/  the backbone with SCR merged + rass.json: rass-restore
//   <root>/segment/  the RAS segmentation folder: rass-segment
// <root> is the first of: $RASS_MINI_MODEL (must exist when set), the
// installed <bin>/../share/rass/models/mini, the source tree's models/mini.
#pragma once
#include <string>

namespace rass {

// The root folder, or "" when none of the places holds one.
std::string mini_model_root();

// <root>/<part> for a tool run without --model; prints, unless quiet, one
// line to stderr saying so ("<tool>: no --model: the embedded mini model
// <path> (synthetic 128x128 scenes; pass --model for real images)"). Throws
// Error(usage) naming the places searched when there is none.
std::string default_model_part(const std::string& part, const std::string& tool, bool quiet);

}  // namespace rass
