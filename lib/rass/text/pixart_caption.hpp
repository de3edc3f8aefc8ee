// PixArt's caption cleaning (T5Embedder.text_preprocessing, from DeepFloyd
// IF), which DreamClear's tools/extract_t5_features.py and test.py apply to a
// caption before T5 reads it: clean_caption twice. Torch-free.
//
// clean_caption, step by step as the reference: URL-decoding (unquote_plus),
// strip and lower-case, URLs, HTML tags, @names, CJK blocks, dashes and
// quotes made ASCII, &quot; and &amp, IP addresses, "#123", long numbers,
// file names, repeated quotes and dots, "bad" punctuation, " . ", words
// joined by more than three - or _, ftfy's fixes and HTML entities, codes
// such as "jc6640", "free shipping", "click for ...", "page 3", sizes such
// as "1920x1080", a space after punctuation, white space collapsed, and
// quotes, leading and trailing punctuation cut. \w, \d, \s and \b have
// Python's Unicode meaning (str.isalnum with "_", category Nd, str.isspace).
//
// Where it is not the reference (each documented; goldens in
// tests/text/make_t5_tokenizer_fixture.py cover the rest):
//   - ftfy.fix_text: its mojibake repair (fix_encoding and the byte-level
//     fixes) is not made; the others are (C1 controls read as
//     Windows-1252, Latin ligatures, character width, curly quotes, line
//     breaks, terminal escapes, control characters, NFC);
//   - BeautifulSoup's html.parser: a tag is "<" then a letter, "/", "!" or
//     "?" up to the next ">", and is removed; other "<" stay, as there;
//   - html.unescape: numeric references and the named ones of HTML 4
//     (those HTML 5 also reads without ";") and a few common others; the
//     remaining HTML 5 names stay as text.
#pragma once
#include <string>
#include <string_view>

namespace rass::text {

// One pass of clean_caption on UTF-8 text (invalid UTF-8 reads as U+FFFD).
std::string pixart_clean_caption(std::string_view caption);
// T5Embedder.text_preprocessing with use_text_preprocessing=True: clean_caption twice.
std::string pixart_text_preprocessing(std::string_view caption);
// With use_text_preprocessing=False (and diffusers' clean_caption=False): text.lower().strip().
std::string lower_strip(std::string_view caption);
// str.strip() (white space as str.isspace()).
std::string python_strip(std::string_view text);

// Steps of clean_caption written out for speed, and the regular expressions
// they replace (the tests compare the two on many strings).
namespace caption_detail {
std::wstring remove_urls(const std::wstring& s, bool www);
std::wstring remove_file_names(const std::wstring& s);
std::wstring remove_urls_regex(const std::wstring& s, bool www);
std::wstring remove_file_names_regex(const std::wstring& s);
std::wstring collapse_spaced_dots(const std::wstring& s);
std::wstring collapse_spaced_dots_regex(const std::wstring& s);
}  // namespace caption_detail

}  // namespace rass::text
