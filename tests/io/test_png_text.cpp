// PNG text chunks (io/png_text.hpp) and the provenance they carry
// (batch/provenance.hpp). References: a file Pillow wrote
// (tests/fixtures/make_png_text_fixtures.py) and zlib's crc32 for the CRCs
// our writer computes with libdeflate.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <zlib.h>

#include <cstring>
#include <fstream>
#include <thread>

#include "rass/batch/provenance.hpp"
#include "rass/core/file.hpp"
#include "rass/io/codecs.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/png_text.hpp"
#include "test_support.hpp"

using namespace rass;

namespace {

Image sample_image() {
  Image img(5, 3, 3);
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = uint8_t(i * 37 + 11);
  return img;
}

uint32_t be32(const uint8_t* p) { return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]; }

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

}  // namespace

TEST_CASE("png_add_text: chunks after IHDR with valid CRCs and the pixels unchanged") {
  const Image img = sample_image();
  const std::vector<uint8_t> plain = encode_image(img, ImageFormat::png);
  const std::string value = "{\"prompt\":\"caf\xc3\xa9\"}";
  const std::vector<uint8_t> png = png_add_text(plain, {{"rass", value}, {"Comment", ""}});
  // Walk every chunk: each CRC (zlib's, independent of libdeflate's) holds.
  size_t pos = 8, texts = 0;
  std::vector<std::string> order;
  while (pos + 12 <= png.size()) {
    const uint32_t n = be32(&png[pos]);
    const std::string type(reinterpret_cast<const char*>(&png[pos + 4]), 4);
    order.push_back(type);
    CHECK(crc32(0, &png[pos + 4], n + 4) == be32(&png[pos + 8 + n]));
    if (type == "iTXt") ++texts;
    pos += 12 + n;
  }
  CHECK(pos == png.size());
  REQUIRE(order.size() >= 5);
  CHECK(order[0] == "IHDR");
  CHECK(order[1] == "iTXt");
  CHECK(order[2] == "iTXt");
  CHECK(order[3] == "IDAT");
  CHECK(texts == 2);
  CHECK(png.size() == plain.size() + (12 + 4 + 5 + value.size()) + (12 + 7 + 5));
  CHECK(decode_image(png, "t.png").data == img.data);                              // fast path
  CHECK(detail::decode_png_libpng(png.data(), png.size(), "t.png").data == img.data);  // libpng
  CHECK_THROWS(png_add_text(plain, {{"", "x"}}));
  CHECK_THROWS(png_add_text(plain, {{std::string(80, 'k'), "x"}}));
  CHECK_THROWS(png_add_text({1, 2, 3}, {{"rass", "x"}}));
}

TEST_CASE("read_png_text: our chunks and Pillow's; other keywords and files give nothing") {
  rass::test::TempDir t;
  const std::vector<uint8_t> png =
      png_add_text(encode_image(sample_image(), ImageFormat::png), {{"Comment", "c"}, {"rass", "{\"a\":1}"}});
  write_bytes(t / "ours.png", png);
  CHECK(read_png_text(t / "ours.png", "rass").value() == "{\"a\":1}");
  CHECK(read_png_text(t / "ours.png", "Comment").value() == "c");
  CHECK_FALSE(read_png_text(t / "ours.png", "Title").has_value());
  const std::string pil = std::string(RASS_FIXTURES) + "/io/png_text_pil.png";
  CHECK(read_png_text(pil, "rass").value() ==
        "{\"tool\":\"rass-restore\",\"version\":\"0.1.0\",\"settings\":{\"prompt\":\"caf\xc3\xa9, street\",\"seed\":7}}");
  CHECK(read_png_text(pil, "Comment").value() == "not ours");  // tEXt
  CHECK_FALSE(read_png_text(pil, "Title").has_value());         // zTXt: compressed, not read
  // A damaged chunk (one byte of its text changed: the CRC fails), a file cut
  // inside the chunk, a JPEG, a missing file.
  std::vector<uint8_t> bad = png;
  bad[33 + 8 + 2] ^= 1;  // inside the first chunk's data
  write_bytes(t / "bad.png", bad);
  CHECK_FALSE(read_png_text(t / "bad.png", "Comment").has_value());
  write_bytes(t / "cut.png", std::vector<uint8_t>(png.begin(), png.begin() + 40));
  CHECK_FALSE(read_png_text(t / "cut.png", "Comment").has_value());
  write_bytes(t / "x.jpg", encode_image(sample_image(), ImageFormat::jpeg));
  CHECK_FALSE(read_png_text(t / "x.jpg", "rass").has_value());
  CHECK_FALSE(read_png_text(t / "none.png", "rass").has_value());
}

TEST_CASE("provenance: made_with compares the recorded settings and names what differs") {
  rass::test::TempDir t;
  nlohmann::ordered_json s = {{"model", "m"}, {"seed", 1}, {"prompt", "caf\xe9"}};  // a Latin-1 byte: not UTF-8
  const std::vector<uint8_t> png =
      png_add_text(encode_image(sample_image(), ImageFormat::png), {{"rass", batch::provenance_text("rass-x", s)}});
  write_bytes(t / "a.png", png);
  std::string why;
  CHECK(batch::made_with(t / "a.png", s, &why));
  nlohmann::ordered_json other = s;
  other["seed"] = 2;
  CHECK_FALSE(batch::made_with(t / "a.png", other, &why));
  CHECK(why == "other seed");
  other = s;
  other.erase("prompt");
  other["dtype"] = "bf16";
  CHECK_FALSE(batch::made_with(t / "a.png", other, &why));
  CHECK(why == "other dtype, prompt");
  write_bytes(t / "plain.png", encode_image(sample_image(), ImageFormat::png));
  CHECK_FALSE(batch::made_with(t / "plain.png", s, &why));
  CHECK(why.find("no settings recorded") == 0);
}

TEST_CASE("provenance: fingerprints follow sizes and times; content hashes follow bytes") {
  rass::test::TempDir t;
  write_file_atomic(t / "m/unet/w.bin", std::string("weights"));
  write_file_atomic(t / "m/config.json", std::string("{}"));
  write_file_atomic(t / "lora.safetensors", std::string("lora"));
  const std::string a = batch::files_fingerprint({t / "m", t / "lora.safetensors"});
  CHECK(a.size() == 16);
  CHECK(batch::files_fingerprint({t / "m", t / "lora.safetensors"}) == a);
  CHECK(batch::files_fingerprint({t / "m"}) != a);
  CHECK(batch::files_fingerprint({t / "m", "", "-", t / "lora.safetensors"}) == a);
  // Same size, new time: another export at the same path.
  struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
  REQUIRE(::utimensat(AT_FDCWD, (t / "m/unet/w.bin").c_str(), times, 0) == 0);
  CHECK(batch::files_fingerprint({t / "m", t / "lora.safetensors"}) != a);
  // FNV-1a 64 of "a" and of "" (the published test vectors).
  write_file_atomic(t / "a.txt", std::string("a"));
  write_file_atomic(t / "e.txt", std::string());
  CHECK(batch::content_hash(t / "a.txt") == "af63dc4c8601ec8c");
  CHECK(batch::content_hash(t / "e.txt") == "cbf29ce484222325");
  CHECK(batch::content_hash(t / "missing") == "");
}
