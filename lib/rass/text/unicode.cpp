#include "rass/text/unicode.hpp"

#include <algorithm>
#include <cstdint>
#include <unordered_map>

#include "rass/text/unicode_tables.hpp"

namespace rass::text {

std::vector<char32_t> clip_bytes_to_unicode() {
  std::vector<char32_t> table(256, 0);
  std::vector<bool> printable(256, false);
  for (int b = '!'; b <= '~'; ++b) printable[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
  int n = 0;
  for (int b = 0; b < 256; ++b) table[b] = printable[b] ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
  return table;
}
namespace {

constexpr char32_t kReplacement = 0xFFFD;

// Class stored in a run table of (start << shift) | class entries.
unsigned run_class(const uint32_t* runs, size_t n, unsigned shift, char32_t c) {
  const uint32_t key = (static_cast<uint32_t>(c) << shift) | ((1u << shift) - 1);
  const uint32_t* it = std::upper_bound(runs, runs + n, key);
  if (it == runs) return 0;
  return *(it - 1) & ((1u << shift) - 1);
}

// Hangul syllable constants (Unicode 3.12).
constexpr char32_t SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
constexpr int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

const tables::Decomposition* find_decomposition(char32_t c) {
  const auto* begin = tables::kDecompositions;
  const auto* end = begin + tables::kDecompositions_size;
  const auto* it = std::lower_bound(begin, end, c, [](const tables::Decomposition& d, char32_t v) { return d.cp < v; });
  return (it != end && it->cp == c) ? it : nullptr;
}

void decompose(char32_t c, int origin, std::u32string& out, std::vector<int>* origins) {
  if (c >= SBase && c < SBase + SCount) {
    const int s = static_cast<int>(c - SBase);
    out.push_back(LBase + s / NCount);
    out.push_back(VBase + (s % NCount) / TCount);
    if (origins) origins->insert(origins->end(), 2, origin);
    if (s % TCount != 0) {
      out.push_back(TBase + s % TCount);
      if (origins) origins->push_back(origin);
    }
    return;
  }
  if (const auto* d = find_decomposition(c)) {
    decompose(d->first, origin, out, origins);
    if (d->second) decompose(d->second, origin, out, origins);
    return;
  }
  out.push_back(c);
  if (origins) origins->push_back(origin);
}

const std::unordered_map<uint64_t, char32_t>& composition_map() {
  static const std::unordered_map<uint64_t, char32_t> map = [] {
    std::unordered_map<uint64_t, char32_t> m;
    for (size_t i = 0; i < tables::kDecompositions_size; ++i) {
      const auto& d = tables::kDecompositions[i];
      if (d.composes) m.emplace((static_cast<uint64_t>(d.first) << 32) | d.second, d.cp);
    }
    return m;
  }();
  return map;
}

// The primary composite of (a, b), or 0.
char32_t compose(char32_t a, char32_t b) {
  if (a >= LBase && a < LBase + LCount && b >= VBase && b < VBase + VCount)
    return SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
  if (a >= SBase && a < SBase + SCount && (a - SBase) % TCount == 0 && b > TBase && b < TBase + TCount)
    return a + (b - TBase);
  const auto& m = composition_map();
  auto it = m.find((static_cast<uint64_t>(a) << 32) | b);
  return it == m.end() ? 0 : it->second;
}

enum SigmaClass { sigma_other = 0, sigma_cased = 1, sigma_ignorable = 2 };
unsigned sigma_class(char32_t c) {
  return run_class(tables::kSigmaRuns, tables::kSigmaRuns_size, 2, c);
}

char32_t lower_one(char32_t c) {
  const auto* begin = tables::kLowerRules;
  const auto* end = begin + tables::kLowerRules_size;
  const auto* it =
      std::upper_bound(begin, end, static_cast<uint32_t>(c), [](uint32_t v, const tables::LowerRule& r) { return v < r.first; });
  if (it == begin) return c;
  --it;
  if (c > it->last || (c - it->first) % it->stride != 0) return c;
  return static_cast<char32_t>(static_cast<int64_t>(c) + it->delta);
}

}  // namespace

void utf8_append(std::string& out, char32_t c) {
  if (c > 0x10FFFF || (c >= 0xD800 && c < 0xE000)) c = kReplacement;
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string utf8_encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) utf8_append(out, c);
  return out;
}

std::u32string utf8_decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned b0 = p[i];
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    int len;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    char32_t c;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
      c = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      c = b0 & 0x0F;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      c = b0 & 0x07;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    } else {
      out.push_back(kReplacement);  // not a lead byte
      ++i;
      continue;
    }
    size_t j = i + 1;
    bool ok = true;
    for (int k = 1; k < len; ++k, ++j) {
      const unsigned lo_k = k == 1 ? lo : 0x80, hi_k = k == 1 ? hi : 0xBF;
      if (j >= n || p[j] < lo_k || p[j] > hi_k) {
        ok = false;
        break;
      }
      c = (c << 6) | (p[j] & 0x3F);
    }
    out.push_back(ok ? c : kReplacement);  // one U+FFFD for the maximal subpart
    i = j;
  }
  return out;
}

int combining_class(char32_t c) {
  return static_cast<int>(run_class(tables::kCccRuns, tables::kCccRuns_size, 8, c));
}

namespace {

// Canonical decomposition and ordering (NFD), with origins and combining classes.
void canonical_decompose(const std::u32string& s, const std::vector<int>* origin, std::u32string& d,
                         std::vector<int>& dorigin, std::vector<int>& ccc) {
  d.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size(); ++i) decompose(s[i], origin ? (*origin)[i] : 0, d, origin ? &dorigin : nullptr);
  // Canonical ordering: stable sort of every run of non-starters by combining class.
  ccc.resize(d.size());
  for (size_t i = 0; i < d.size(); ++i) ccc[i] = combining_class(d[i]);
  for (size_t i = 0; i < d.size();) {
    if (ccc[i] == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < d.size() && ccc[j] != 0) ++j;
    if (j - i > 1) {
      std::vector<size_t> idx(j - i);
      for (size_t k = 0; k < idx.size(); ++k) idx[k] = i + k;
      std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return ccc[a] < ccc[b]; });
      std::u32string seg;
      std::vector<int> segc, sego;
      for (size_t k : idx) {
        seg.push_back(d[k]);
        segc.push_back(ccc[k]);
        if (origin) sego.push_back(dorigin[k]);
      }
      for (size_t k = 0; k < idx.size(); ++k) {
        d[i + k] = seg[k];
        ccc[i + k] = segc[k];
        if (origin) dorigin[i + k] = sego[k];
      }
    }
    i = j;
  }
}

}  // namespace

std::u32string nfd(std::u32string_view s) {
  if (std::all_of(s.begin(), s.end(), [](char32_t c) { return c < 0x80; })) return std::u32string(s);
  std::u32string d;
  std::vector<int> dorigin, ccc;
  canonical_decompose(std::u32string(s), nullptr, d, dorigin, ccc);
  return d;
}

void nfc_inplace(std::u32string& s, std::vector<int>* origin) {
  // Fast path: ASCII is always NFC.
  if (std::all_of(s.begin(), s.end(), [](char32_t c) { return c < 0x80; })) return;
  std::u32string d;
  std::vector<int> dorigin, ccc;
  canonical_decompose(s, origin, d, dorigin, ccc);
  // Canonical composition.
  std::u32string out;
  std::vector<int> oorigin;
  out.reserve(d.size());
  long starter = -1;
  int last_ccc = 0;  // class of the last character kept after the starter
  for (size_t i = 0; i < d.size(); ++i) {
    const char32_t c = d[i];
    const int k = ccc[i];
    if (starter >= 0) {
      const bool adjacent = static_cast<long>(out.size()) - 1 == starter;
      if (adjacent || (last_ccc != 0 && last_ccc < k)) {
        if (char32_t comp = compose(out[starter], c)) {
          out[starter] = comp;
          continue;
        }
      }
    }
    if (k == 0) starter = static_cast<long>(out.size());
    last_ccc = k;
    out.push_back(c);
    if (origin) oorigin.push_back(dorigin[i]);
  }
  s.swap(out);
  if (origin) origin->swap(oorigin);
}

std::u32string nfc(std::u32string_view s) {
  std::u32string r(s);
  nfc_inplace(r, nullptr);
  return r;
}

void to_lower_inplace(std::u32string& s, std::vector<int>* origin) {
  std::u32string out;
  std::vector<int> oorigin;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    const int o = origin ? (*origin)[i] : 0;
    if (c == 0x130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE -> i + COMBINING DOT ABOVE
      out.push_back(U'i');
      out.push_back(0x307);
      if (origin) oorigin.insert(oorigin.end(), 2, o);
      continue;
    }
    char32_t l;
    if (c == 0x3A3) {
      // CPython's handle_capital_sigma: final when a cased letter precedes (skipping
      // case-ignorables) and none follows (likewise).
      long j = static_cast<long>(i) - 1;
      while (j >= 0 && sigma_class(s[j]) == sigma_ignorable) --j;
      bool final_sigma = j >= 0 && sigma_class(s[j]) == sigma_cased;
      if (final_sigma) {
        size_t k = i + 1;
        while (k < s.size() && sigma_class(s[k]) == sigma_ignorable) ++k;
        final_sigma = k == s.size() || sigma_class(s[k]) != sigma_cased;
      }
      l = final_sigma ? 0x3C2 : 0x3C3;
    } else {
      l = lower_one(c);
    }
    out.push_back(l);
    if (origin) oorigin.push_back(o);
  }
  s.swap(out);
  if (origin) origin->swap(oorigin);
}

std::u32string to_lower(std::u32string_view s) {
  std::u32string r(s);
  to_lower_inplace(r, nullptr);
  return r;
}

bool py_isspace(char32_t c) {
  return std::binary_search(tables::kPySpace, tables::kPySpace + tables::kPySpace_size, static_cast<uint32_t>(c));
}

ClipClass clip_class(char32_t c) {
  return static_cast<ClipClass>(run_class(tables::kClipClassRuns, tables::kClipClassRuns_size, 2, c));
}

CleanClass clean_class(char32_t c) {
  return static_cast<CleanClass>(run_class(tables::kCleanRuns, tables::kCleanRuns_size, 2, c));
}

bool is_cjk_ideograph(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

}  // namespace rass::text
