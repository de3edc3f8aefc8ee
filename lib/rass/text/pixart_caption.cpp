#include "rass/text/pixart_caption.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <pthread.h>

#include <cstring>
#include <exception>
#include <regex>
#include <stdexcept>
#include <utility>

#include "rass/text/unicode.hpp"

namespace rass::text {
namespace {

static_assert(sizeof(wchar_t) == 4, "the caption regexes run on UTF-32 wchar_t strings");
using WString = std::wstring;

// Python's re on str: \w is str.isalnum() or "_", \d category Nd, \s str.isspace().
bool py_decimal(char32_t c) {
  // The zero of every run of ten Nd digits (Unicode 14.0, CPython 3.11's unicodedata).
  static const uint32_t zeros[] = {
      0x30,    0x660,   0x6f0,   0x7c0,   0x966,   0x9e6,   0xa66,   0xae6,   0xb66,   0xbe6,   0xc66,
      0xce6,   0xd66,   0xde6,   0xe50,   0xed0,   0xf20,   0x1040,  0x1090,  0x17e0,  0x1810,  0x1946,
      0x19d0,  0x1a80,  0x1a90,  0x1b50,  0x1bb0,  0x1c40,  0x1c50,  0xa620,  0xa8d0,  0xa900,  0xa9d0,
      0xa9f0,  0xaa50,  0xabf0,  0xff10,  0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0,
      0x11450, 0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60,
      0x16ac0, 0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0};
  const uint32_t u = uint32_t(c);
  const uint32_t* it = std::upper_bound(std::begin(zeros), std::end(zeros), u);
  return it != std::begin(zeros) && u - *(it - 1) < 10;
}
bool py_word(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  const ClipClass k = clip_class(c);  // \p{L} and \p{N}: str.isalnum()
  return k == ClipClass::letter || k == ClipClass::number;
}

// std::regex over wchar_t with Python's classes for \w, \d, \s (and so \b, \W, \D, \S).
struct PyTraits : std::regex_traits<wchar_t> {
  bool isctype(wchar_t c, char_class_type f) const {
    static const PyTraits plain;
    static const char_class_type w = plain.class_of(L"w"), d = plain.class_of(L"d"), s = plain.class_of(L"s");
    if (f == w) return py_word(char32_t(c));
    if (f == d) return py_decimal(char32_t(c));
    if (f == s) return py_isspace(char32_t(c));
    return std::regex_traits<wchar_t>::isctype(c, f);
  }
  char_class_type class_of(const wchar_t* name) const { return lookup_classname(name, name + std::wcslen(name)); }
};
using PyRegex = std::basic_regex<wchar_t, PyTraits>;

PyRegex rx(const wchar_t* pattern) { return PyRegex(pattern, std::regex_constants::ECMAScript); }
// re.sub(pattern, repl, s); repl uses $1 for \1.
void sub(WString& s, const PyRegex& re, const wchar_t* repl) {
  s = std::regex_replace(s, re, repl);
}
size_t count(const WString& s, const PyRegex& re) {
  return size_t(std::distance(std::regex_iterator<WString::const_iterator, wchar_t, PyTraits>(s.begin(), s.end(), re),
                              std::regex_iterator<WString::const_iterator, wchar_t, PyTraits>()));
}

WString to_w(const std::u32string& s) { return WString(s.begin(), s.end()); }

// \b at i of s: \w on one side only (outside the string is not \w).
bool word_boundary(const WString& s, size_t i) {
  const bool before = i > 0 && py_word(char32_t(s[i - 1]));
  const bool after = i < s.size() && py_word(char32_t(s[i]));
  return before != after;
}
bool starts_with_at(const WString& s, size_t i, const wchar_t* lit) {
  const size_t n = std::wcslen(lit);
  return i + n <= s.size() && s.compare(i, n, lit) == 0;
}
std::u32string to_u32(const WString& s) { return std::u32string(s.begin(), s.end()); }

std::u32string py_strip(const std::u32string& s) {
  size_t b = 0, e = s.size();
  while (b < e && py_isspace(s[b])) ++b;
  while (e > b && py_isspace(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// urllib.parse.unquote_plus: "+" is a space; %XX escapes within each run of
// ASCII characters are bytes, decoded as UTF-8 with U+FFFD for errors.
std::u32string unquote_plus(std::u32string s) {
  std::replace(s.begin(), s.end(), U'+', U' ');
  if (s.find(U'%') == std::u32string::npos) return s;
  auto hex = [](char32_t c) -> int {
    if (c >= '0' && c <= '9') return int(c - '0');
    if (c >= 'a' && c <= 'f') return int(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return int(c - 'A' + 10);
    return -1;
  };
  std::u32string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] >= 0x80) {
      out += s[i++];
      continue;
    }
    size_t j = i;
    while (j < s.size() && s[j] < 0x80) ++j;
    std::string bytes;
    for (size_t k = i; k < j; ++k) {
      if (s[k] == '%') {
        const int a = k + 1 < j ? hex(s[k + 1]) : -1, b = k + 2 < j ? hex(s[k + 2]) : -1;
        if (a >= 0 && b >= 0) {
          bytes += char(a * 16 + b);
          k += 2;
          continue;
        }
      }
      bytes += char(s[k]);
    }
    out += utf8_decode(bytes);
    i = j;
  }
  return out;
}

// Windows-1252 for U+0080..U+009F (Python's html._invalid_charrefs and
// ftfy's sloppy-windows-1252: the five undefined bytes stay themselves).
char32_t windows1252(char32_t c) {
  static const char32_t t[32] = {0x20AC, 0x81,   0x201A, 0x192,  0x201E, 0x2026, 0x2020, 0x2021,
                                 0x2C6,  0x2030, 0x160,  0x2039, 0x152,  0x8D,   0x17D,  0x8F,
                                 0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                 0x2DC,  0x2122, 0x161,  0x203A, 0x153,  0x9D,   0x17E,  0x178};
  return t[c - 0x80];
}

// HTML character references: HTML 4's names (with ";"), the names HTML 5
// also reads without ";", and apos; (html.entities.html5, single code points).
struct Entity {
  const char* name;
  char32_t value;
};
const Entity kEntities[] = {
    {"AElig", 0xC6}, {"AElig;", 0xC6}, {"AMP", 0x26}, {"Aacute", 0xC1}, {"Aacute;", 0xC1}, {"Acirc", 0xC2},
    {"Acirc;", 0xC2}, {"Agrave", 0xC0}, {"Agrave;", 0xC0}, {"Alpha;", 0x391}, {"Aring", 0xC5}, {"Aring;", 0xC5},
    {"Atilde", 0xC3}, {"Atilde;", 0xC3}, {"Auml", 0xC4}, {"Auml;", 0xC4}, {"Beta;", 0x392}, {"COPY", 0xA9},
    {"Ccedil", 0xC7}, {"Ccedil;", 0xC7}, {"Chi;", 0x3A7}, {"Dagger;", 0x2021}, {"Delta;", 0x394}, {"ETH", 0xD0},
    {"ETH;", 0xD0}, {"Eacute", 0xC9}, {"Eacute;", 0xC9}, {"Ecirc", 0xCA}, {"Ecirc;", 0xCA}, {"Egrave", 0xC8},
    {"Egrave;", 0xC8}, {"Epsilon;", 0x395}, {"Eta;", 0x397}, {"Euml", 0xCB}, {"Euml;", 0xCB}, {"GT", 0x3E},
    {"Gamma;", 0x393}, {"Iacute", 0xCD}, {"Iacute;", 0xCD}, {"Icirc", 0xCE}, {"Icirc;", 0xCE}, {"Igrave", 0xCC},
    {"Igrave;", 0xCC}, {"Iota;", 0x399}, {"Iuml", 0xCF}, {"Iuml;", 0xCF}, {"Kappa;", 0x39A}, {"LT", 0x3C},
    {"Lambda;", 0x39B}, {"Mu;", 0x39C}, {"Ntilde", 0xD1}, {"Ntilde;", 0xD1}, {"Nu;", 0x39D}, {"OElig;", 0x152},
    {"Oacute", 0xD3}, {"Oacute;", 0xD3}, {"Ocirc", 0xD4}, {"Ocirc;", 0xD4}, {"Ograve", 0xD2}, {"Ograve;", 0xD2},
    {"Omega;", 0x3A9}, {"Omicron;", 0x39F}, {"Oslash", 0xD8}, {"Oslash;", 0xD8}, {"Otilde", 0xD5}, {"Otilde;", 0xD5},
    {"Ouml", 0xD6}, {"Ouml;", 0xD6}, {"Phi;", 0x3A6}, {"Pi;", 0x3A0}, {"Prime;", 0x2033}, {"Psi;", 0x3A8},
    {"QUOT", 0x22}, {"REG", 0xAE}, {"Rho;", 0x3A1}, {"Scaron;", 0x160}, {"Sigma;", 0x3A3}, {"THORN", 0xDE},
    {"THORN;", 0xDE}, {"Tau;", 0x3A4}, {"Theta;", 0x398}, {"Uacute", 0xDA}, {"Uacute;", 0xDA}, {"Ucirc", 0xDB},
    {"Ucirc;", 0xDB}, {"Ugrave", 0xD9}, {"Ugrave;", 0xD9}, {"Upsilon;", 0x3A5}, {"Uuml", 0xDC}, {"Uuml;", 0xDC},
    {"Xi;", 0x39E}, {"Yacute", 0xDD}, {"Yacute;", 0xDD}, {"Yuml;", 0x178}, {"Zeta;", 0x396}, {"aacute", 0xE1},
    {"aacute;", 0xE1}, {"acirc", 0xE2}, {"acirc;", 0xE2}, {"acute", 0xB4}, {"acute;", 0xB4}, {"aelig", 0xE6},
    {"aelig;", 0xE6}, {"agrave", 0xE0}, {"agrave;", 0xE0}, {"alefsym;", 0x2135}, {"alpha;", 0x3B1}, {"amp", 0x26},
    {"amp;", 0x26}, {"and;", 0x2227}, {"ang;", 0x2220}, {"aring", 0xE5}, {"aring;", 0xE5}, {"asymp;", 0x2248},
    {"atilde", 0xE3}, {"atilde;", 0xE3}, {"auml", 0xE4}, {"auml;", 0xE4}, {"bdquo;", 0x201E}, {"beta;", 0x3B2},
    {"brvbar", 0xA6}, {"brvbar;", 0xA6}, {"bull;", 0x2022}, {"cap;", 0x2229}, {"ccedil", 0xE7}, {"ccedil;", 0xE7},
    {"cedil", 0xB8}, {"cedil;", 0xB8}, {"cent", 0xA2}, {"cent;", 0xA2}, {"chi;", 0x3C7}, {"circ;", 0x2C6},
    {"clubs;", 0x2663}, {"cong;", 0x2245}, {"copy", 0xA9}, {"copy;", 0xA9}, {"crarr;", 0x21B5}, {"cup;", 0x222A},
    {"curren", 0xA4}, {"curren;", 0xA4}, {"dArr;", 0x21D3}, {"dagger;", 0x2020}, {"darr;", 0x2193}, {"deg", 0xB0},
    {"deg;", 0xB0}, {"delta;", 0x3B4}, {"diams;", 0x2666}, {"divide", 0xF7}, {"divide;", 0xF7}, {"eacute", 0xE9},
    {"eacute;", 0xE9}, {"ecirc", 0xEA}, {"ecirc;", 0xEA}, {"egrave", 0xE8}, {"egrave;", 0xE8}, {"empty;", 0x2205},
    {"emsp;", 0x2003}, {"ensp;", 0x2002}, {"epsilon;", 0x3B5}, {"equiv;", 0x2261}, {"eta;", 0x3B7}, {"eth", 0xF0},
    {"eth;", 0xF0}, {"euml", 0xEB}, {"euml;", 0xEB}, {"euro;", 0x20AC}, {"exist;", 0x2203}, {"fnof;", 0x192},
    {"forall;", 0x2200}, {"frac12", 0xBD}, {"frac12;", 0xBD}, {"frac14", 0xBC}, {"frac14;", 0xBC}, {"frac34", 0xBE},
    {"frac34;", 0xBE}, {"frasl;", 0x2044}, {"gamma;", 0x3B3}, {"ge;", 0x2265}, {"gt", 0x3E}, {"gt;", 0x3E},
    {"hArr;", 0x21D4}, {"harr;", 0x2194}, {"hearts;", 0x2665}, {"hellip;", 0x2026}, {"iacute", 0xED}, {"iacute;", 0xED},
    {"icirc", 0xEE}, {"icirc;", 0xEE}, {"iexcl", 0xA1}, {"iexcl;", 0xA1}, {"igrave", 0xEC}, {"igrave;", 0xEC},
    {"image;", 0x2111}, {"infin;", 0x221E}, {"int;", 0x222B}, {"iota;", 0x3B9}, {"iquest", 0xBF}, {"iquest;", 0xBF},
    {"isin;", 0x2208}, {"iuml", 0xEF}, {"iuml;", 0xEF}, {"kappa;", 0x3BA}, {"lArr;", 0x21D0}, {"lambda;", 0x3BB},
    {"lang;", 0x27E8}, {"laquo", 0xAB}, {"laquo;", 0xAB}, {"larr;", 0x2190}, {"lceil;", 0x2308}, {"ldquo;", 0x201C},
    {"le;", 0x2264}, {"lfloor;", 0x230A}, {"lowast;", 0x2217}, {"loz;", 0x25CA}, {"lrm;", 0x200E}, {"lsaquo;", 0x2039},
    {"lsquo;", 0x2018}, {"lt", 0x3C}, {"lt;", 0x3C}, {"macr", 0xAF}, {"macr;", 0xAF}, {"mdash;", 0x2014},
    {"micro", 0xB5}, {"micro;", 0xB5}, {"middot", 0xB7}, {"middot;", 0xB7}, {"minus;", 0x2212}, {"mu;", 0x3BC},
    {"nabla;", 0x2207}, {"nbsp", 0xA0}, {"nbsp;", 0xA0}, {"ndash;", 0x2013}, {"ne;", 0x2260}, {"ni;", 0x220B},
    {"not", 0xAC}, {"not;", 0xAC}, {"notin;", 0x2209}, {"nsub;", 0x2284}, {"ntilde", 0xF1}, {"ntilde;", 0xF1},
    {"nu;", 0x3BD}, {"oacute", 0xF3}, {"oacute;", 0xF3}, {"ocirc", 0xF4}, {"ocirc;", 0xF4}, {"oelig;", 0x153},
    {"ograve", 0xF2}, {"ograve;", 0xF2}, {"oline;", 0x203E}, {"omega;", 0x3C9}, {"omicron;", 0x3BF}, {"oplus;", 0x2295},
    {"or;", 0x2228}, {"ordf", 0xAA}, {"ordf;", 0xAA}, {"ordm", 0xBA}, {"ordm;", 0xBA}, {"oslash", 0xF8},
    {"oslash;", 0xF8}, {"otilde", 0xF5}, {"otilde;", 0xF5}, {"otimes;", 0x2297}, {"ouml", 0xF6}, {"ouml;", 0xF6},
    {"para", 0xB6}, {"para;", 0xB6}, {"part;", 0x2202}, {"permil;", 0x2030}, {"perp;", 0x22A5}, {"phi;", 0x3C6},
    {"pi;", 0x3C0}, {"piv;", 0x3D6}, {"plusmn", 0xB1}, {"plusmn;", 0xB1}, {"pound", 0xA3}, {"pound;", 0xA3},
    {"prime;", 0x2032}, {"prod;", 0x220F}, {"prop;", 0x221D}, {"psi;", 0x3C8}, {"quot", 0x22}, {"quot;", 0x22},
    {"rArr;", 0x21D2}, {"radic;", 0x221A}, {"rang;", 0x27E9}, {"raquo", 0xBB}, {"raquo;", 0xBB}, {"rarr;", 0x2192},
    {"rceil;", 0x2309}, {"rdquo;", 0x201D}, {"real;", 0x211C}, {"reg", 0xAE}, {"reg;", 0xAE}, {"rfloor;", 0x230B},
    {"rho;", 0x3C1}, {"rlm;", 0x200F}, {"rsaquo;", 0x203A}, {"rsquo;", 0x2019}, {"sbquo;", 0x201A}, {"scaron;", 0x161},
    {"sdot;", 0x22C5}, {"sect", 0xA7}, {"sect;", 0xA7}, {"shy", 0xAD}, {"shy;", 0xAD}, {"sigma;", 0x3C3},
    {"sigmaf;", 0x3C2}, {"sim;", 0x223C}, {"spades;", 0x2660}, {"sub;", 0x2282}, {"sube;", 0x2286}, {"sum;", 0x2211},
    {"sup1", 0xB9}, {"sup1;", 0xB9}, {"sup2", 0xB2}, {"sup2;", 0xB2}, {"sup3", 0xB3}, {"sup3;", 0xB3}, {"sup;", 0x2283},
    {"supe;", 0x2287}, {"szlig", 0xDF}, {"szlig;", 0xDF}, {"tau;", 0x3C4}, {"there4;", 0x2234}, {"theta;", 0x3B8},
    {"thetasym;", 0x3D1}, {"thinsp;", 0x2009}, {"thorn", 0xFE}, {"thorn;", 0xFE}, {"tilde;", 0x2DC}, {"times", 0xD7},
    {"times;", 0xD7}, {"trade;", 0x2122}, {"uArr;", 0x21D1}, {"uacute", 0xFA}, {"uacute;", 0xFA}, {"uarr;", 0x2191},
    {"ucirc", 0xFB}, {"ucirc;", 0xFB}, {"ugrave", 0xF9}, {"ugrave;", 0xF9}, {"uml", 0xA8}, {"uml;", 0xA8},
    {"upsih;", 0x3D2}, {"upsilon;", 0x3C5}, {"uuml", 0xFC}, {"uuml;", 0xFC}, {"weierp;", 0x2118}, {"xi;", 0x3BE},
    {"yacute", 0xFD}, {"yacute;", 0xFD}, {"yen", 0xA5}, {"yen;", 0xA5}, {"yuml", 0xFF}, {"yuml;", 0xFF},
    {"zeta;", 0x3B6}, {"zwj;", 0x200D}, {"zwnj;", 0x200C},
};

const Entity* find_entity(const std::string& name) {
  static const bool sorted = std::is_sorted(std::begin(kEntities), std::end(kEntities),
                                            [](const Entity& a, const Entity& b) { return std::strcmp(a.name, b.name) < 0; });
  (void)sorted;
  const Entity* it = std::lower_bound(std::begin(kEntities), std::end(kEntities), name,
                                      [](const Entity& e, const std::string& n) { return std::strcmp(e.name, n.c_str()) < 0; });
  return it != std::end(kEntities) && name == it->name ? it : nullptr;
}

bool noncharacter(uint32_t n) {
  return (n >= 0x1 && n <= 0x8) || n == 0xb || (n >= 0xe && n <= 0x1f) || (n >= 0x7f && n <= 0x9f) ||
         (n >= 0xfdd0 && n <= 0xfdef) || (n & 0xfffe) == 0xfffe;
}

// A numeric reference's text ("#123", "#x1F", with or without ";") as html.unescape reads it.
std::u32string numeric_reference(const std::u32string& ref) {
  const bool hexa = ref.size() > 1 && (ref[1] == 'x' || ref[1] == 'X');
  uint64_t n = 0;
  bool huge = false;
  for (size_t i = hexa ? 2 : 1; i < ref.size() && ref[i] != ';'; ++i) {
    const char32_t c = ref[i];
    const uint32_t d = c <= '9' ? uint32_t(c - '0') : uint32_t((c | 0x20) - 'a' + 10);
    n = n * (hexa ? 16 : 10) + d;
    if (n > 0x10FFFF) huge = true, n = 0x110000;
  }
  if (huge || n > 0x10FFFF || (n >= 0xD800 && n <= 0xDFFF)) return U"\uFFFD";
  if (n == 0) return U"\uFFFD";
  if (n == 0x0d) return U"\r";
  if (n >= 0x80 && n <= 0x9f) return std::u32string(1, windows1252(char32_t(n)));
  if (noncharacter(uint32_t(n))) return U"";
  return std::u32string(1, char32_t(n));
}

// html.unescape: &#123; &#x1f; (";" optional) and named references (the
// longest known prefix of a name that is not known as a whole).
std::u32string html_unescape(const std::u32string& s) {
  if (s.find(U'&') == std::u32string::npos) return s;
  std::u32string out;
  auto is_digit = [](char32_t c) { return c >= '0' && c <= '9'; };
  auto is_hex = [&](char32_t c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); };
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '&') {
      out += s[i++];
      continue;
    }
    size_t j = i + 1;
    if (j < s.size() && s[j] == '#') {
      size_t k = j + 1;
      const bool hexa = k < s.size() && (s[k] == 'x' || s[k] == 'X');
      if (hexa) ++k;
      const size_t digits = k;
      while (k < s.size() && (hexa ? is_hex(s[k]) : is_digit(s[k]))) ++k;
      if (k > digits) {
        if (k < s.size() && s[k] == ';') ++k;
        out += numeric_reference(s.substr(j, k - j));
        i = k;
        continue;
      }
      out += s[i++];
      continue;
    }
    // [^\t\n\f <&#;]{1,32};?
    size_t k = j;
    while (k < s.size() && k - j < 32 && s[k] != '\t' && s[k] != '\n' && s[k] != '\f' && s[k] != ' ' && s[k] != '<' &&
           s[k] != '&' && s[k] != '#' && s[k] != ';')
      ++k;
    if (k == j) {
      out += s[i++];
      continue;
    }
    if (k < s.size() && s[k] == ';') ++k;
    const std::u32string ref = s.substr(j, k - j);
    const std::string name = utf8_encode(ref);
    if (const Entity* e = find_entity(name)) {
      out += e->value;
    } else {
      bool found = false;
      for (size_t x = ref.size() - 1; x > 1; --x) {
        if (const Entity* p = find_entity(utf8_encode(ref.substr(0, x)))) {
          out += p->value;
          out += ref.substr(x);
          found = true;
          break;
        }
      }
      if (!found) out += U"&" + ref;
    }
    i = k;
  }
  return out;
}

// BeautifulSoup(text, "html.parser").text, as far as captions go: tags
// ("<" and a letter, "/", "!" or "?" up to ">") removed; references as
// bs4 reads them with html.parser: numeric ones as html.unescape, a name
// ([a-zA-Z][-.a-zA-Z0-9]* and a character that is neither letter nor digit,
// a ";" there consumed) as its character when known, else "&" + name.
std::u32string soup_text(const std::u32string& s) {
  if (s.find(U'<') == std::u32string::npos && s.find(U'&') == std::u32string::npos) return s;
  auto alpha = [](char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  auto alnum = [&](char32_t c) { return alpha(c) || (c >= '0' && c <= '9'); };
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '<' && i + 1 < s.size()) {
      const char32_t c = s[i + 1];
      const size_t close = s.find(U'>', i + 1);
      if ((alpha(c) || c == '/' || c == '!' || c == '?') && close != std::u32string::npos) {
        i = close + 1;
        continue;
      }
    }
    if (s[i] == '&' && i + 1 < s.size() && alpha(s[i + 1])) {
      size_t k = i + 2;
      while (k < s.size() && (alnum(s[k]) || s[k] == '-' || s[k] == '.')) ++k;
      if (k < s.size()) {  // a terminator: the reference is complete
        const std::u32string name = s.substr(i + 1, k - i - 1);
        const std::string n8 = utf8_encode(name);
        const Entity* e = find_entity(n8 + ";");
        if (!e) e = find_entity(n8);
        if (e) out += e->value;
        else out += U"&" + name;
        i = s[k] == ';' ? k + 1 : k;
        continue;
      }
    }
    if (s[i] == '&' && i + 1 < s.size() && s[i + 1] == '#') {
      // Numeric: as html.unescape (one reference).
      size_t k = i + 2;
      const bool hexa = k < s.size() && (s[k] == 'x' || s[k] == 'X');
      if (hexa) ++k;
      const size_t digits = k;
      while (k < s.size() && ((s[k] >= '0' && s[k] <= '9') || (hexa && alnum(s[k]) && (s[k] | 0x20) <= 'f'))) ++k;
      if (k > digits) {
        if (k < s.size() && s[k] == ';') ++k;
        out += html_unescape(s.substr(i, k - i));
        i = k;
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

// ftfy.fix_text's fixes but the mojibake repair, on one line, until nothing changes.
std::u32string ftfy_line(std::u32string t) {
  static const std::pair<char32_t, const char32_t*> ligatures[] = {
      {0x132, U"IJ"}, {0x133, U"ij"}, {0x149, U"\u02BCn"}, {0x1C4, U"D\u017D"}, {0x1C5, U"D\u017E"},
      {0x1C6, U"d\u017E"}, {0x1C7, U"LJ"}, {0x1C8, U"Lj"}, {0x1C9, U"lj"}, {0x1CA, U"NJ"}, {0x1CB, U"Nj"},
      {0x1CC, U"nj"}, {0x1F1, U"DZ"}, {0x1F2, U"Dz"}, {0x1F3, U"dz"}, {0xFB00, U"ff"}, {0xFB01, U"fi"},
      {0xFB02, U"fl"}, {0xFB03, U"ffi"}, {0xFB04, U"ffl"}, {0xFB05, U"\u017Ft"}, {0xFB06, U"st"}};
  // ftfy's width map past the fullwidth ASCII (NFKC of U+FF5F..U+FFEF).
  static const std::pair<char32_t, const char32_t*> width[] = {
      {0xFF5F, U"\u2985"}, {0xFF60, U"\u2986"}, {0xFF61, U"\u3002"}, {0xFF62, U"\u300C"}, {0xFF63, U"\u300D"},
      {0xFF64, U"\u3001"}, {0xFF65, U"\u30FB"}, {0xFF66, U"\u30F2"}, {0xFF67, U"\u30A1"}, {0xFF68, U"\u30A3"},
      {0xFF69, U"\u30A5"}, {0xFF6A, U"\u30A7"}, {0xFF6B, U"\u30A9"}, {0xFF6C, U"\u30E3"}, {0xFF6D, U"\u30E5"},
      {0xFF6E, U"\u30E7"}, {0xFF6F, U"\u30C3"}, {0xFF70, U"\u30FC"}, {0xFF71, U"\u30A2"}, {0xFF72, U"\u30A4"},
      {0xFF73, U"\u30A6"}, {0xFF74, U"\u30A8"}, {0xFF75, U"\u30AA"}, {0xFF76, U"\u30AB"}, {0xFF77, U"\u30AD"},
      {0xFF78, U"\u30AF"}, {0xFF79, U"\u30B1"}, {0xFF7A, U"\u30B3"}, {0xFF7B, U"\u30B5"}, {0xFF7C, U"\u30B7"},
      {0xFF7D, U"\u30B9"}, {0xFF7E, U"\u30BB"}, {0xFF7F, U"\u30BD"}, {0xFF80, U"\u30BF"}, {0xFF81, U"\u30C1"},
      {0xFF82, U"\u30C4"}, {0xFF83, U"\u30C6"}, {0xFF84, U"\u30C8"}, {0xFF85, U"\u30CA"}, {0xFF86, U"\u30CB"},
      {0xFF87, U"\u30CC"}, {0xFF88, U"\u30CD"}, {0xFF89, U"\u30CE"}, {0xFF8A, U"\u30CF"}, {0xFF8B, U"\u30D2"},
      {0xFF8C, U"\u30D5"}, {0xFF8D, U"\u30D8"}, {0xFF8E, U"\u30DB"}, {0xFF8F, U"\u30DE"}, {0xFF90, U"\u30DF"},
      {0xFF91, U"\u30E0"}, {0xFF92, U"\u30E1"}, {0xFF93, U"\u30E2"}, {0xFF94, U"\u30E4"}, {0xFF95, U"\u30E6"},
      {0xFF96, U"\u30E8"}, {0xFF97, U"\u30E9"}, {0xFF98, U"\u30EA"}, {0xFF99, U"\u30EB"}, {0xFF9A, U"\u30EC"},
      {0xFF9B, U"\u30ED"}, {0xFF9C, U"\u30EF"}, {0xFF9D, U"\u30F3"}, {0xFF9E, U"\u3099"}, {0xFF9F, U"\u309A"},
      {0xFFA0, U"\u1160"}, {0xFFA1, U"\u1100"}, {0xFFA2, U"\u1101"}, {0xFFA3, U"\u11AA"}, {0xFFA4, U"\u1102"},
      {0xFFA5, U"\u11AC"}, {0xFFA6, U"\u11AD"}, {0xFFA7, U"\u1103"}, {0xFFA8, U"\u1104"}, {0xFFA9, U"\u1105"},
      {0xFFAA, U"\u11B0"}, {0xFFAB, U"\u11B1"}, {0xFFAC, U"\u11B2"}, {0xFFAD, U"\u11B3"}, {0xFFAE, U"\u11B4"},
      {0xFFAF, U"\u11B5"}, {0xFFB0, U"\u111A"}, {0xFFB1, U"\u1106"}, {0xFFB2, U"\u1107"}, {0xFFB3, U"\u1108"},
      {0xFFB4, U"\u1121"}, {0xFFB5, U"\u1109"}, {0xFFB6, U"\u110A"}, {0xFFB7, U"\u110B"}, {0xFFB8, U"\u110C"},
      {0xFFB9, U"\u110D"}, {0xFFBA, U"\u110E"}, {0xFFBB, U"\u110F"}, {0xFFBC, U"\u1110"}, {0xFFBD, U"\u1111"},
      {0xFFBE, U"\u1112"}, {0xFFC2, U"\u1161"}, {0xFFC3, U"\u1162"}, {0xFFC4, U"\u1163"}, {0xFFC5, U"\u1164"},
      {0xFFC6, U"\u1165"}, {0xFFC7, U"\u1166"}, {0xFFCA, U"\u1167"}, {0xFFCB, U"\u1168"}, {0xFFCC, U"\u1169"},
      {0xFFCD, U"\u116A"}, {0xFFCE, U"\u116B"}, {0xFFCF, U"\u116C"}, {0xFFD2, U"\u116D"}, {0xFFD3, U"\u116E"},
      {0xFFD4, U"\u116F"}, {0xFFD5, U"\u1170"}, {0xFFD6, U"\u1171"}, {0xFFD7, U"\u1172"}, {0xFFDA, U"\u1173"},
      {0xFFDB, U"\u1174"}, {0xFFDC, U"\u1175"}, {0xFFE0, U"\u00A2"}, {0xFFE1, U"\u00A3"}, {0xFFE2, U"\u00AC"},
      {0xFFE3, U"\u0020\u0304"}, {0xFFE4, U"\u00A6"}, {0xFFE5, U"\u00A5"}, {0xFFE6, U"\u20A9"}, {0xFFE8, U"\u2502"},
      {0xFFE9, U"\u2190"}, {0xFFEA, U"\u2191"}, {0xFFEB, U"\u2192"}, {0xFFEC, U"\u2193"}, {0xFFED, U"\u25A0"},
      {0xFFEE, U"\u25CB"},
  };
  auto lookup = [](const auto& table, char32_t c) -> const char32_t* {
    for (const auto& [k, v] : table)
      if (k == c) return v;
    return nullptr;
  };
  static const PyRegex entity = rx(L"&#?[0-9A-Za-z]{1,24};");
  static const PyRegex ansi = rx(L"\x1b\\[((?:\\d|;)*)([a-zA-Z])");
  for (int round = 0; round < 16; ++round) {
    const std::u32string orig = t;
    // unescape_html ("auto": only where the line has no "<"): complete references.
    if (t.find(U'<') == std::u32string::npos && t.find(U'&') != std::u32string::npos) {
      WString w = to_w(t), o;
      auto last = w.cbegin();
      for (std::regex_iterator<WString::const_iterator, wchar_t, PyTraits> m(w.cbegin(), w.cend(), entity), end; m != end; ++m) {
        o.append(last, (*m)[0].first);
        const std::u32string ref = to_u32((*m)[0].str());
        const std::u32string u = html_unescape(ref);
        const bool numeric = ref.size() > 1 && ref[1] == '#';
        const bool named_known = !numeric && find_entity(utf8_encode(ref.substr(1))) != nullptr;
        o += (numeric && u.find(U';') == std::u32string::npos) || named_known ? to_w(u) : to_w(ref);
        last = (*m)[0].second;
      }
      o.append(last, w.cend());
      t = to_u32(o);
    }
    std::u32string u;
    for (char32_t c : t) {
      if (c >= 0x80 && c <= 0x9f) c = windows1252(c);  // fix_c1_controls
      if (const char32_t* l = lookup(ligatures, c)) {
        u += l;
      } else if (c >= 0xFF01 && c <= 0xFF5E) {
        u += char32_t(c - 0xFEE0);
      } else if (c == 0x3000) {
        u += U' ';
      } else if (const char32_t* v = (c >= 0xFF5F && c <= 0xFFEF) ? lookup(width, c) : nullptr) {
        u += v;
      } else if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B)) {
        u += U'\'';
      } else if (c >= 0x201C && c <= 0x201F) {
        u += U'"';
      } else {
        u += c;
      }
    }
    // fix_line_breaks
    std::u32string v;
    for (size_t i = 0; i < u.size(); ++i) {
      const char32_t c = u[i];
      if (c == '\r' && i + 1 < u.size() && u[i + 1] == '\n') continue;
      v += (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) ? U'\n' : c;
    }
    WString w = to_w(v);
    sub(w, ansi, L"");
    u.clear();
    for (char32_t c : to_u32(w)) {
      const bool control = c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
                           (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
      if (!control) u += c;
    }
    t = nfc(u);
    if (t == orig) break;
  }
  return t;
}

std::u32string ftfy_fix_text(const std::u32string& s) {
  // ftfy fixes text line by line (segments end after "\n").
  std::u32string out;
  size_t b = 0;
  while (b < s.size()) {
    size_t e = s.find(U'\n', b);
    e = e == std::u32string::npos ? s.size() : e + 1;
    out += ftfy_line(s.substr(b, e - b));
    b = e;
  }
  return out;
}

// T5Embedder.basic_clean.
std::u32string basic_clean(const std::u32string& s) {
  return py_strip(html_unescape(html_unescape(ftfy_fix_text(s))));
}

}  // namespace

namespace caption_detail {

// re.sub(r'\b((?:https?:(?:\/{1,3}|[a-zA-Z0-9%])|[a-zA-Z0-9.\-]+[.](?:com|co|ru|net|org|edu|gov|it)[\w/-]*\b\/?(?!@)))', '', s)
// (with www: for https?: when `www`), found as the regex engine finds it but
// without its backtracking: the second branch's greedy run of
// [a-zA-Z0-9.\-] ends at the last "." (of those after the start) whose TLD
// and tail match, which does not depend on where the run was entered, so
// each run is searched once; the regex took 20 s on a 16 KiB run of "ab.".
std::wstring remove_urls(const std::wstring& s, bool www) {
  const size_t n = s.size();
  auto in_c = [](wchar_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
  };
  auto in_tail = [](wchar_t c) { return py_word(char32_t(c)) || c == '/' || c == '-'; };
  // The end of the second branch's match when its "." is at k, or npos.
  auto dot_match_end = [&](size_t k) -> size_t {
    if (s[k] != '.') return std::wstring::npos;
    for (const wchar_t* tld : {L"com", L"co", L"ru", L"net", L"org", L"edu", L"gov", L"it"}) {
      if (!starts_with_at(s, k + 1, tld)) continue;
      const size_t t = k + 1 + std::wcslen(tld);
      size_t lmax = 0;
      while (t + lmax < n && in_tail(s[t + lmax])) ++lmax;
      for (size_t l = lmax + 1; l-- > 0;) {
        const size_t e = t + l;
        if (!word_boundary(s, e)) continue;
        if (e < n && s[e] == '/' && !(e + 1 < n && s[e + 1] == '@')) return e + 1;
        if (!(e < n && s[e] == '@')) return e;
      }
    }
    return std::wstring::npos;
  };
  // The first branch at p: the end, or npos.
  auto scheme_end = [&](size_t p) -> size_t {
    size_t q = p;
    if (www) {
      if (!starts_with_at(s, q, L"www:")) return std::wstring::npos;
      q += 4;
    } else {
      if (!starts_with_at(s, q, L"http")) return std::wstring::npos;
      q += 4;
      if (q < n && s[q] == 's') ++q;  // s? is greedy; ":" must follow either way
      if (!(q < n && s[q] == ':')) return std::wstring::npos;  // without the "s", ":" would have to be at it
      ++q;
    }
    size_t slashes = 0;
    while (slashes < 3 && q + slashes < n && s[q + slashes] == '/') ++slashes;
    if (slashes > 0) return q + slashes;
    const wchar_t c = q < n ? s[q] : 0;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '%') return q + 1;
    return std::wstring::npos;
  };
  std::wstring out;
  out.reserve(n);
  size_t run_end = 0, run_best = std::wstring::npos, run_best_end = 0;  // the C run around p and its last good "."
  size_t p = 0, copied = 0;
  while (p < n) {
    size_t end = std::wstring::npos;
    if (word_boundary(s, p)) {
      end = scheme_end(p);
      if (end == std::wstring::npos && in_c(s[p])) {
        if (p >= run_end) {  // a new run: find its last "." that matches
          run_end = p;
          while (run_end < n && in_c(s[run_end])) ++run_end;
          run_best = std::wstring::npos;
          for (size_t k = run_end; k-- > p + 1;) {
            const size_t e = dot_match_end(k);
            if (e != std::wstring::npos) {
              run_best = k, run_best_end = e;
              break;
            }
          }
        }
        if (run_best != std::wstring::npos && run_best >= p + 1) end = run_best_end;
      }
    }
    if (end == std::wstring::npos) {
      ++p;
      continue;
    }
    out.append(s, copied, p - copied);
    copied = p = end;
    run_end = 0;  // the next search starts after the match: runs are found again from there
  }
  out.append(s, copied, std::wstring::npos);
  return out;
}

// re.sub(r'[\S]+\.(?:png|jpg|jpeg|bmp|webp|eps|pdf|apk|mp4)', '', s), without
// the backtracking (28 s on a 16 KiB word): in each run of non-space
// characters the greedy [\S]+ from the run's start ends at the run's last
// "." followed by an extension (the first of the list that matches there);
// nothing after it in the run can match again.
std::wstring remove_file_names(const std::wstring& s) {
  const size_t n = s.size();
  auto space = [](wchar_t c) { return py_isspace(char32_t(c)); };
  std::wstring out;
  out.reserve(n);
  size_t i = 0;
  while (i < n) {
    if (space(s[i])) {
      out += s[i++];
      continue;
    }
    size_t e = i;
    while (e < n && !space(s[e])) ++e;
    size_t cut_end = std::wstring::npos;
    for (size_t k = e; k-- > i + 1;) {
      if (s[k] != '.') continue;
      for (const wchar_t* ext : {L"png", L"jpg", L"jpeg", L"bmp", L"webp", L"eps", L"pdf", L"apk", L"mp4"})
        if (starts_with_at(s, k + 1, ext)) {
          cut_end = k + 1 + std::wcslen(ext);
          break;
        }
      if (cut_end != std::wstring::npos) break;
    }
    if (cut_end == std::wstring::npos) out.append(s, i, e - i);
    else out.append(s, cut_end, e - cut_end);
    i = e;
  }
  return out;
}

// re.sub(r'\s+\.\s+', ' ', s) without the backtracking (the regex retried
// each start inside a run of spaces: 10 s on 16 KiB of them): a run of
// white space followed by "." and more white space becomes one space.
std::wstring collapse_spaced_dots(const std::wstring& s) {
  const size_t n = s.size();
  auto space = [&](size_t i) { return i < n && py_isspace(char32_t(s[i])); };
  std::wstring out;
  out.reserve(n);
  size_t i = 0;
  while (i < n) {
    if (!space(i)) {
      out += s[i++];
      continue;
    }
    size_t e = i;
    while (space(e)) ++e;
    if (e < n && s[e] == '.' && space(e + 1)) {
      size_t f = e + 1;
      while (space(f)) ++f;
      out += L' ';
      i = f;
    } else {
      out.append(s, i, e - i);
      i = e;
    }
  }
  return out;
}

// The regexes the scans above replace, for the tests: re.sub on a copy.
std::wstring regex_sub_copy(const std::wstring& s, const PyRegex& re, const wchar_t* repl) {
  WString w = s;
  sub(w, re, repl);
  return w;
}

std::wstring remove_urls_regex(const std::wstring& s, bool www) {
  static const PyRegex url1 = rx(
      L"\\b((?:https?:(?:\\/{1,3}|[a-zA-Z0-9%])|[a-zA-Z0-9.\\-]+[.](?:com|co|ru|net|org|edu|gov|it)[\\w/-]*\\b\\/?(?!@)))");
  static const PyRegex url2 = rx(
      L"\\b((?:www:(?:\\/{1,3}|[a-zA-Z0-9%])|[a-zA-Z0-9.\\-]+[.](?:com|co|ru|net|org|edu|gov|it)[\\w/-]*\\b\\/?(?!@)))");
  return regex_sub_copy(s, www ? url2 : url1, L"");
}

std::wstring remove_file_names_regex(const std::wstring& s) {
  static const PyRegex filename = rx(L"[\\S]+\\.(?:png|jpg|jpeg|bmp|webp|eps|pdf|apk|mp4)");
  return regex_sub_copy(s, filename, L"");
}

std::wstring collapse_spaced_dots_regex(const std::wstring& s) {
  static const PyRegex spaced_dot = rx(L"\\s+\\.\\s+");
  return regex_sub_copy(s, spaced_dot, L" ");
}

}  // namespace caption_detail

namespace {

// libstdc++'s regex matcher recurses once per character a loop such as
// [\S]+ takes: a 16 KiB word needs more than the 8 MiB a thread usually has.
// The passes run on a thread of their own with a stack to match.
constexpr size_t kCleanStackBytes = size_t(256) << 20;  // reserved, not committed: pages are touched as used

template <class F>
void run_on_large_stack(F& f) {
  struct Call {
    F* f;
    std::exception_ptr error;
  } call{&f, nullptr};
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) throw std::runtime_error("pthread_attr_init failed");
  pthread_attr_setstacksize(&attr, kCleanStackBytes);
  pthread_t thread;
  const int rc = pthread_create(
      &thread, &attr,
      [](void* p) -> void* {
        auto* c = static_cast<Call*>(p);
        try {
          (*c->f)();
        } catch (...) {
          c->error = std::current_exception();
        }
        return nullptr;
      },
      &call);
  pthread_attr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("cannot start the caption cleaning's thread (" + std::string(std::strerror(rc)) + ")");
  pthread_join(thread, nullptr);
  if (call.error) std::rethrow_exception(call.error);
}

std::string clean_caption_here(std::string_view caption_utf8) {
  std::u32string c = unquote_plus(utf8_decode(caption_utf8));
  c = to_lower(py_strip(c));
  WString w = to_w(c);
  static const PyRegex person = rx(L"<person>");
  sub(w, person, L"person");
  // urls
  w = caption_detail::remove_urls(w, false);
  w = caption_detail::remove_urls(w, true);
  w = to_w(soup_text(to_u32(w)));
  static const PyRegex nick = rx(L"@[\\w\\d]+\\b");
  sub(w, nick, L"");
  // CJK strokes, katakana extensions, enclosed CJK, CJK compatibility,
  // extension A, Yijing hexagrams, unified ideographs.
  static const PyRegex cjk = rx(L"[\u31c0-\u31ef\u31f0-\u31ff\u3200-\u32ff\u3300-\u33ff\u3400-\u4dbf\u4dc0-\u4dff\u4e00-\u9fff]+");
  sub(w, cjk, L"");
  static const PyRegex dashes = rx(
      L"[\u002D\u058A\u05BE\u1400\u1806\u2010-\u2015\u2E17\u2E1A\u2E3A\u2E3B\u2E40\u301C\u3030\u30A0\uFE31\uFE32\uFE58"
      L"\uFE63\uFF0D]+");
  sub(w, dashes, L"-");
  static const PyRegex dquotes = rx(L"[`\u00B4\u00AB\u00BB\u201C\u201D\u00A8]");
  static const PyRegex squotes = rx(L"[\u2018\u2019]");
  sub(w, dquotes, L"\"");
  sub(w, squotes, L"'");
  static const PyRegex quot = rx(L"&quot;?"), amp = rx(L"&amp");
  sub(w, quot, L"");
  sub(w, amp, L"");
  static const PyRegex ip = rx(L"\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}");
  sub(w, ip, L" ");
  static const PyRegex article = rx(L"\\d:\\d\\d\\s+$");
  sub(w, article, L"");
  static const PyRegex backslash_n = rx(L"\\\\n");
  sub(w, backslash_n, L" ");
  static const PyRegex hash3 = rx(L"#\\d{1,3}\\b"), hash5 = rx(L"#\\d{5,}\\b"), num6 = rx(L"\\b\\d{6,}\\b");
  sub(w, hash3, L"");
  sub(w, hash5, L"");
  sub(w, num6, L"");
  w = caption_detail::remove_file_names(w);
  static const PyRegex quotes2 = rx(L"[\"']{2,}"), dots2 = rx(L"[.]{2,}");
  sub(w, quotes2, L"\"");
  sub(w, dots2, L" ");
  static const PyRegex bad_punct = rx(L"[#\u00AE\u2022\u00A9\u2122&@\u00B7\u00BA\u00BD\u00BE\u00BF\u00A1\u00A7~)(\\]\\[}{|\\\\/*]{1,}");
  sub(w, bad_punct, L" ");
  w = caption_detail::collapse_spaced_dots(w);
  static const PyRegex joiners = rx(L"(?:-|_)");
  if (count(w, joiners) > 3) sub(w, joiners, L" ");
  w = to_w(basic_clean(to_u32(w)));
  static const PyRegex code1 = rx(L"\\b[a-zA-Z]{1,3}\\d{3,15}\\b"), code2 = rx(L"\\b[a-zA-Z]+\\d+[a-zA-Z]+\\b"),
                       code3 = rx(L"\\b\\d+[a-zA-Z]+\\d+\\b");
  sub(w, code1, L"");
  sub(w, code2, L"");
  sub(w, code3, L"");
  static const PyRegex shipping = rx(L"(worldwide\\s+)?(free\\s+)?shipping"), download = rx(L"(free\\s)?download(\\sfree)?"),
                       click = rx(L"\\bclick\\b\\s(?:for|on)\\s\\w+"),
                       images = rx(L"\\b(?:png|jpg|jpeg|bmp|webp|eps|pdf|apk|mp4)(\\simage[s]?)?"),
                       page = rx(L"\\bpage\\s+\\d+\\b");
  sub(w, shipping, L"");
  sub(w, download, L"");
  sub(w, click, L"");
  sub(w, images, L"");
  sub(w, page, L"");
  static const PyRegex code4 = rx(L"\\b\\d*[a-zA-Z]+\\d+[a-zA-Z]+\\d+[a-zA-Z\\d]*\\b");
  sub(w, code4, L" ");
  static const PyRegex size = rx(L"\\b\\d+\\.?\\d*[x\u0445\u00D7]\\d+\\.?\\d*\\b");
  sub(w, size, L"");
  static const PyRegex colon = rx(L"\\b\\s+:\\s+"), punct_space = rx(L"(\\D[,./])\\b"), spaces = rx(L"\\s+");
  sub(w, colon, L": ");
  sub(w, punct_space, L"$1 ");
  sub(w, spaces, L" ");
  // ^["']([\w\W]+)["']$ -> \1, written out: the regex recurses once per character.
  if (w.size() >= 3 && (w.front() == '"' || w.front() == '\'') && (w.back() == '"' || w.back() == '\''))
    w = w.substr(1, w.size() - 2);
  if (!w.empty() && std::wcschr(L"'_,-:;", w.front())) w.erase(0, 1);
  if (!w.empty() && std::wcschr(L"'_,-:+", w.back())) w.pop_back();
  // ^\.\S+$
  if (w.size() >= 2 && w.front() == '.' &&
      std::none_of(w.begin() + 1, w.end(), [](wchar_t c) { return py_isspace(char32_t(c)); }))
    w.clear();
  return utf8_encode(py_strip(to_u32(w)));
}

}  // namespace

std::string pixart_clean_caption(std::string_view caption) {
  std::string out;
  auto work = [&] { out = clean_caption_here(caption); };
  run_on_large_stack(work);
  return out;
}

std::string pixart_text_preprocessing(std::string_view caption) {
  std::string out;
  auto work = [&] { out = clean_caption_here(clean_caption_here(caption)); };  // both passes on one thread
  run_on_large_stack(work);
  return out;
}

std::string python_strip(std::string_view text) {
  return utf8_encode(py_strip(utf8_decode(text)));
}

std::string lower_strip(std::string_view caption) {
  return utf8_encode(py_strip(to_lower(utf8_decode(caption))));
}

}  // namespace rass::text
