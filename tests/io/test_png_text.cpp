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

TEST_CASE("provenance: side outputs asked for must have been written with the output") {
  rass::test::TempDir t;
  nlohmann::ordered_json s = {{"seed", 1}, {"outputs", {{"latent", true}, {"overlay", "a\nb\n"}}}};
  write_bytes(t / "a.png", png_add_text(encode_image(sample_image(), ImageFormat::png),
                                        {{"rass", batch::provenance_text("rass-x", s)}}));
  std::string why;
  nlohmann::ordered_json want = s;
  want["outputs"] = nlohmann::ordered_json::object();  // fewer side outputs now: kept
  CHECK(batch::made_with(t / "a.png", want, &why));
  want["outputs"] = {{"latent", true}};
  CHECK(batch::made_with(t / "a.png", want, &why));
  want["outputs"] = {{"latent", true}, {"attention", true}};  // one it was not written with
  CHECK_FALSE(batch::made_with(t / "a.png", want, &why));
  CHECK(why == "other outputs");
  want["outputs"] = {{"overlay", "c\n"}};  // the overlay's class names changed
  CHECK_FALSE(batch::made_with(t / "a.png", want, &why));
}

TEST_CASE("provenance: content hashes are zlib's CRC-32 and Adler-32; fingerprints follow names sizes and bytes") {
  rass::test::TempDir t;
  // zlib's own crc32/adler32 as the reference for libdeflate's.
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = char((i * 2654435761u) >> 13);
  write_file_atomic(t / "big.bin", big);
  const auto* b = reinterpret_cast<const Bytef*>(big.data());
  char want[17];
  std::snprintf(want, sizeof want, "%08lx%08lx", crc32(0, b, uInt(big.size())), adler32(1, b, uInt(big.size())));
  CHECK(batch::content_hash(t / "big.bin") == want);
  write_file_atomic(t / "a.txt", std::string("a"));
  CHECK(batch::content_hash(t / "a.txt") == "e8b7be4300620062");  // the published CRC-32 and Adler-32 of "a"
  CHECK(batch::content_hash(t / "missing") == "");

  write_file_atomic(t / "m/unet/w.bin", std::string("weights"));
  write_file_atomic(t / "m/config.json", std::string("{}"));
  write_file_atomic(t / "lora.safetensors", std::string("lora"));
  const std::string a = batch::files_fingerprint({t / "m", t / "lora.safetensors"});
  CHECK(a.size() == 16);
  CHECK(batch::files_fingerprint({t / "m", "", "-", t / "lora.safetensors"}) == a);
  CHECK(batch::files_fingerprint({t / "m"}) != a);
  // Times do not count (a copy is the same model); hidden files do not count
  // (.git); a folder link loop is listed once.
  struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
  REQUIRE(::utimensat(AT_FDCWD, (t / "m/unet/w.bin").c_str(), times, 0) == 0);
  write_file_atomic(t / "m/.git/HEAD", std::string("ref"));
  std::filesystem::create_directory_symlink("..", t / "m/unet/loop");
  CHECK(batch::files_fingerprint({t / "m", t / "lora.safetensors"}) == a);
  // Other bytes of the same size, another name: another model.
  write_file_atomic(t / "m/unet/w.bin", std::string("WEIGHTS"));
  CHECK(batch::files_fingerprint({t / "m", t / "lora.safetensors"}) != a);
  write_file_atomic(t / "m/unet/w.bin", std::string("weights"));
  CHECK(batch::files_fingerprint({t / "m", t / "lora.safetensors"}) == a);
  std::filesystem::rename(t / "m/config.json", t / "m/config2.json");
  CHECK(batch::files_fingerprint({t / "m", t / "lora.safetensors"}) != a);
  CHECK(batch::text_or_hash("short") == "short");
  CHECK(batch::text_or_hash(std::string(5000, 'x')).find("5000 bytes, hash ") == 0);
}
