// Registers the Sentence-BERT similarity backend (model/sbert.cpp, LibTorch)
// with rass-caption-map's torch-free tag-similarity layer. Torch-free header:
// tools that link the network layer call it from main.
#pragma once

namespace rass::model {

void register_sbert_similarity();

}  // namespace rass::model
