#include "rass/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"

namespace rass {

namespace {
constexpr uint64_t kMaxHeader = 100'000'000;  // the reference library's limit
}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafeTensorsHeader parse_safetensors(const uint8_t* bytes, size_t size, const std::string& name) {
  auto bad = [&](const std::string& what) { throw_bad_input(name, what); };
  if (size < 8) bad("too short for a safetensors file (" + std::to_string(size) + " bytes)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  // Another kind of file read as a length gives a nonsense one: said as what it is.
  if ((n > kMaxHeader || n > size - 8) && (size < 9 || bytes[8] != '{')) {
    const char* kind = size >= 8 && std::memcmp(bytes, "\x89PNG", 4) == 0                ? "a PNG image"
                       : size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF ? "a JPEG image"
                       : size >= 4 && std::memcmp(bytes, "PK\x03\x04", 4) == 0        ? "a ZIP archive (a PyTorch .pth/.bin checkpoint? convert it to safetensors)"
                       : size >= 2 && bytes[0] == 0x80 && bytes[1] <= 5                 ? "a Python pickle (a PyTorch checkpoint? convert it to safetensors)"
                       : size >= 4 && std::memcmp(bytes, "GGUF", 4) == 0                ? "a GGUF file"
                                                                                        : nullptr;
    if (kind) bad(std::string("is not a safetensors file but ") + kind);
  }
  if (n > kMaxHeader) bad("header length " + std::to_string(n) + " is larger than the 100 MB limit");
  if (n > size - 8) bad("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size) + " bytes): truncated?");
  if (n < 2 || bytes[8] != '{') bad("header does not start with a JSON object");
  nlohmann::json j;
  try {
    // A tensor named twice is refused as such (the writers' dicts cannot
    // hold one; the last of the two was kept, and the first's bytes then
    // read as a gap before it).
    j = parse_json_unique_keys<nlohmann::json>(std::string_view(reinterpret_cast<const char*>(bytes) + 8, n));
  } catch (const nlohmann::json::exception& e) {
    bad(std::string("header is not valid JSON: ") + e.what());
  } catch (const std::exception& e) {  // nested too deep, a key twice
    bad(std::string("header: ") + e.what());
  }
  if (!j.is_object()) bad("header is not a JSON object");
  SafeTensorsHeader h;
  h.data_start = 8 + size_t(n);
  const size_t data_size = size - h.data_start;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string key = it.key();
    const nlohmann::json& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) bad("__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) bad("__metadata__['" + m.key() + "'] is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + key + "': ";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      bad(where + "needs dtype, shape and data_offsets");
    TensorView t;
    t.name = key;
    if (!v["dtype"].is_string() || !dtype_from_name(v["dtype"].get<std::string>(), t.dtype))
      bad(where + "unknown dtype " + v["dtype"].dump());
    if (!v["shape"].is_array()) bad(where + "shape is not a list");
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) bad(where + "shape entries must be non-negative integers");
      const uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > UINT64_MAX / dim) bad(where + "shape overflows");
      numel *= dim;
      t.shape.push_back(int64_t(dim));
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      bad(where + "data_offsets must be [begin, end]");
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end) bad(where + "data_offsets begin > end");
    if (end > data_size)
      bad(where + "data ends at " + std::to_string(end) + " but the file has " + std::to_string(data_size) +
          " data bytes: truncated?");
    const size_t es = dtype_size(t.dtype);
    if (numel > UINT64_MAX / es || end - begin != numel * es)
      bad(where + "shape and dtype need " + std::to_string(numel * es) + " bytes but data_offsets span " +
          std::to_string(end - begin));
    t.offset = size_t(begin);
    t.nbytes = size_t(end - begin);
    t.data = bytes + h.data_start + begin;
    h.tensors.push_back(std::move(t));
  }
  // The tensors must tile the data area with no gap and no overlap.
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorView& a, const TensorView& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.nbytes < b.nbytes;
  });
  size_t pos = 0;
  for (const TensorView& t : h.tensors) {
    if (t.offset != pos)
      bad("tensor '" + t.name + "' starts at " + std::to_string(t.offset) + ", expected " + std::to_string(pos) +
          (t.offset < pos ? " (overlaps the previous tensor)" : " (gap before it)"));
    pos += t.nbytes;
  }
  if (pos != data_size)
    bad("tensors cover " + std::to_string(pos) + " of the " + std::to_string(data_size) + " data bytes (trailing data)");
  return h;
}

std::shared_ptr<SafeTensorsFile> SafeTensorsFile::open(const std::string& path) {
  // O_NONBLOCK: a FIFO in a file's place is refused below instead of
  // blocking the open until something writes to it (no effect on files).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw_bad_input(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw_bad_input(path, "not a regular file");
  }
  std::shared_ptr<SafeTensorsFile> f(new SafeTensorsFile());
  f->path_ = path;
  f->size_ = size_t(st.st_size);
  if (f->size_ > 0) {
    f->map_ = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f->map_ == MAP_FAILED) {
      f->map_ = nullptr;
      ::close(fd);
      throw_bad_input(path, std::string("cannot map: ") + std::strerror(errno));
    }
  }
  ::close(fd);
  f->header_ = parse_safetensors(static_cast<const uint8_t*>(f->map_), f->size_, path);
  for (size_t i = 0; i < f->header_.tensors.size(); ++i) f->index_[f->header_.tensors[i].name] = i;
  return f;
}

SafeTensorsFile::~SafeTensorsFile() {
  if (map_) ::munmap(map_, size_);
}

const TensorView* SafeTensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorToWrite*> order;
  for (const auto& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const TensorToWrite* a, const TensorToWrite* b) {
    const size_t sa = dtype_size(a->dtype), sb = dtype_size(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });
  nlohmann::ordered_json h = nlohmann::ordered_json::object();  // "{}" when there are no tensors, as the reference writes
  if (!metadata.empty()) h["__metadata__"] = metadata;
  size_t pos = 0;
  for (const TensorToWrite* t : order) {
    int64_t numel = 1;
    for (int64_t d : t->shape) numel *= d;
    if (size_t(numel) * dtype_size(t->dtype) != t->nbytes)
      throw_usage(path + ": tensor '" + t->name + "' has " + std::to_string(t->nbytes) + " bytes, its shape needs " +
                  std::to_string(size_t(numel) * dtype_size(t->dtype)));
    if (h.contains(t->name)) throw_usage(path + ": tensor name '" + t->name + "' given twice");
    h[t->name] = {{"dtype", dtype_name(t->dtype)}, {"shape", t->shape}, {"data_offsets", {pos, pos + t->nbytes}}};
    pos += t->nbytes;
  }
  std::string header = json_file_text(h, path);
  while (header.size() % 8) header += ' ';
  // Streamed tensor by tensor from the caller's memory: a 3.4 GB UNet is not
  // copied into one buffer first (that doubled the peak memory of a merge).
  uint8_t size_le[8];
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) size_le[i] = uint8_t(n >> (8 * i));
  AtomicFile f(path);
  f.write(size_le, sizeof size_le);
  f.write(header);
  for (const TensorToWrite* t : order)
    if (t->nbytes) f.write(t->data, t->nbytes);
  f.commit();
}

}  // namespace rass
