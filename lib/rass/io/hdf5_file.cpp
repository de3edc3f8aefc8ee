#include "rass/io/hdf5_file.hpp"

#include <hdf5.h>

#include <atomic>
#include <mutex>

#include "rass/core/error.hpp"

namespace rass::io {

namespace {

// libhdf5 (Debian's serial build) keeps global state without locks.
std::mutex& hdf5_mutex() {
  static std::mutex mu;
  return mu;
}

// Once: no error-stack printing on stderr; every call is checked and reported here.
void quiet_library() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

// Closes an HDF5 handle at scope exit with the matching H5*close.
struct Handle {
  hid_t id = H5I_INVALID_HID;
  herr_t (*close)(hid_t) = nullptr;
  Handle(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  ~Handle() {
    if (id >= 0 && close) close(id);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  bool ok() const { return id >= 0; }
};

hid_t utf8_string_type() {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return t;
  if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
    H5Tclose(t);
    return H5I_INVALID_HID;
  }
  return t;
}

}  // namespace

// ---- writer -------------------------------------------------------------------

struct Hdf5Writer::Impl {
  hid_t file = H5I_INVALID_HID;
  void check(bool ok, const std::string& what) const {
    if (!ok) throw_runtime("HDF5: cannot write " + what);
  }
  void write_attribute(const std::string& name, hid_t type, hid_t mem_type, const void* data) {
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    check(space.ok(), "attribute " + name);
    Handle attr(H5Acreate2(file, name.c_str(), type, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    check(attr.ok() && H5Awrite(attr.id, mem_type, data) >= 0, "attribute " + name);
  }
  void write_dataset(const std::string& name, const std::vector<uint64_t>& dims, hid_t file_type, hid_t mem_type,
                     const void* data, bool compress) {
    std::vector<hsize_t> d(dims.begin(), dims.end());
    Handle space(H5Screate_simple(static_cast<int>(d.size()), d.data(), nullptr), H5Sclose);
    check(space.ok(), "dataset " + name);
    Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    // No creation/modification times in the object header: the same data
    // give the same bytes (packs compare by checksum, rebuilt sets by cmp).
    check(dcpl.ok() && H5Pset_obj_track_times(dcpl.id, 0) >= 0, "dataset " + name);
    bool empty = d.empty();
    for (hsize_t x : d) empty = empty || x == 0;
    if (compress && !empty && H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
      std::vector<hsize_t> chunk = d;
      chunk[0] = 1;
      check(H5Pset_chunk(dcpl.id, static_cast<int>(chunk.size()), chunk.data()) >= 0 && H5Pset_deflate(dcpl.id, 1) >= 0,
            "dataset " + name + " (compression)");
    }
    Handle set(H5Dcreate2(file, name.c_str(), file_type, space.id, H5P_DEFAULT, dcpl.id, H5P_DEFAULT), H5Dclose);
    check(set.ok(), "dataset " + name);
    if (!empty) check(H5Dwrite(set.id, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0, "dataset " + name);
  }
};

Hdf5Writer::Hdf5Writer() : impl_(std::make_unique<Impl>()) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  quiet_library();
  static std::atomic<unsigned long> counter{0};
  // The core driver keys open files by name: one name per writer.
  const std::string name = "rass-memory-" + std::to_string(counter++) + ".h5";
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  impl_->check(fapl.ok() && H5Pset_fapl_core(fapl.id, 1 << 20, 0) >= 0, "a file in memory");
  impl_->file = H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id);
  impl_->check(impl_->file >= 0, "a file in memory");
}

Hdf5Writer::~Hdf5Writer() {
  if (impl_ && impl_->file >= 0) {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    H5Fclose(impl_->file);
  }
}

void Hdf5Writer::attribute(const std::string& name, const std::string& value) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  Handle type(utf8_string_type(), H5Tclose);
  impl_->check(type.ok(), "attribute " + name);
  const char* p = value.c_str();
  impl_->write_attribute(name, type.id, type.id, &p);
}

void Hdf5Writer::attribute(const std::string& name, int64_t value) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  impl_->write_attribute(name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void Hdf5Writer::attribute_double(const std::string& name, double value) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  impl_->write_attribute(name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

void Hdf5Writer::dataset_u8(const std::string& name, const std::vector<uint64_t>& dims, const uint8_t* data,
                            bool compress) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  impl_->write_dataset(name, dims, H5T_STD_U8LE, H5T_NATIVE_UINT8, data, compress);
}

void Hdf5Writer::dataset_i32(const std::string& name, const std::vector<uint64_t>& dims, const int32_t* data) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  impl_->write_dataset(name, dims, H5T_STD_I32LE, H5T_NATIVE_INT32, data, false);
}

void Hdf5Writer::dataset_f64(const std::string& name, const std::vector<uint64_t>& dims, const double* data) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  impl_->write_dataset(name, dims, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, data, false);
}

void Hdf5Writer::dataset_strings(const std::string& name, const std::vector<std::string>& values) {
  std::vector<const char*> ptrs;
  for (const std::string& v : values) ptrs.push_back(v.c_str());
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  Handle type(utf8_string_type(), H5Tclose);
  impl_->check(type.ok(), "dataset " + name);
  impl_->write_dataset(name, {values.size()}, type.id, type.id, ptrs.data(), false);
}

std::vector<uint8_t> Hdf5Writer::finish() {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  impl_->check(impl_->file >= 0, "a finished file");
  impl_->check(H5Fflush(impl_->file, H5F_SCOPE_GLOBAL) >= 0, "the file (flush)");
  const ssize_t size = H5Fget_file_image(impl_->file, nullptr, 0);
  impl_->check(size > 0, "the file image");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  impl_->check(H5Fget_file_image(impl_->file, bytes.data(), bytes.size()) == size, "the file image");
  const herr_t closed = H5Fclose(impl_->file);
  impl_->file = H5I_INVALID_HID;
  impl_->check(closed >= 0, "the file (close)");
  return bytes;
}

// ---- reader -------------------------------------------------------------------

struct Hdf5Reader::Impl {
  std::string path;
  hid_t file = H5I_INVALID_HID;
  [[noreturn]] void fail(const std::string& what) const { throw_bad_input(path, what); }

  // Opens `name` and checks it holds `cls` data; returns the dataset and its element count.
  hid_t open(const std::string& name, H5T_class_t cls, size_t* count) const {
    hid_t set = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
    if (set < 0) fail("has no dataset '" + name + "'");
    Handle type(H5Dget_type(set), H5Tclose);
    Handle space(H5Dget_space(set), H5Sclose);
    const hssize_t n = space.ok() ? H5Sget_simple_extent_npoints(space.id) : -1;
    if (!type.ok() || n < 0 || H5Tget_class(type.id) != cls) {
      H5Dclose(set);
      fail("dataset '" + name + "' has another type than expected");
    }
    *count = static_cast<size_t>(n);
    return set;
  }
  template <class T>
  std::vector<T> read_numeric(const std::string& name, H5T_class_t cls, hid_t mem_type) const {
    size_t n = 0;
    Handle set(open(name, cls, &n), H5Dclose);
    std::vector<T> out(n);
    if (n && H5Dread(set.id, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
      fail("cannot read dataset '" + name + "'");
    return out;
  }
  template <class T>
  T read_attribute(const std::string& name, H5T_class_t cls, hid_t mem_type) const {
    Handle attr(H5Aopen(file, name.c_str(), H5P_DEFAULT), H5Aclose);
    if (!attr.ok()) fail("has no attribute '" + name + "'");
    Handle type(H5Aget_type(attr.id), H5Tclose);
    if (!type.ok() || H5Tget_class(type.id) != cls) fail("attribute '" + name + "' has another type than expected");
    T v{};
    if (H5Aread(attr.id, mem_type, &v) < 0) fail("cannot read attribute '" + name + "'");
    return v;
  }
};

Hdf5Reader::Hdf5Reader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  quiet_library();
  if (H5Fis_hdf5(path.c_str()) <= 0) impl_->fail("is not an HDF5 file (or cannot be read)");
  impl_->file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (impl_->file < 0) impl_->fail("cannot be opened as an HDF5 file (truncated or corrupt?)");
}

Hdf5Reader::~Hdf5Reader() {
  if (impl_ && impl_->file >= 0) {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    H5Fclose(impl_->file);
  }
}

bool Hdf5Reader::has(const std::string& name) const {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  return H5Lexists(impl_->file, name.c_str(), H5P_DEFAULT) > 0;
}

std::vector<uint64_t> Hdf5Reader::dims(const std::string& dataset) const {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  Handle set(H5Dopen2(impl_->file, dataset.c_str(), H5P_DEFAULT), H5Dclose);
  if (!set.ok()) impl_->fail("has no dataset '" + dataset + "'");
  Handle space(H5Dget_space(set.id), H5Sclose);
  const int rank = space.ok() ? H5Sget_simple_extent_ndims(space.id) : -1;
  if (rank < 0) impl_->fail("cannot read the shape of '" + dataset + "'");
  std::vector<hsize_t> d(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.id, d.data(), nullptr);
  return std::vector<uint64_t>(d.begin(), d.end());
}

std::vector<uint8_t> Hdf5Reader::read_u8(const std::string& dataset) const {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  return impl_->read_numeric<uint8_t>(dataset, H5T_INTEGER, H5T_NATIVE_UINT8);
}

std::vector<int32_t> Hdf5Reader::read_i32(const std::string& dataset) const {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  return impl_->read_numeric<int32_t>(dataset, H5T_INTEGER, H5T_NATIVE_INT32);
}

std::vector<double> Hdf5Reader::read_f64(const std::string& dataset) const {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  return impl_->read_numeric<double>(dataset, H5T_FLOAT, H5T_NATIVE_DOUBLE);
}

std::vector<std::string> Hdf5Reader::read_strings(const std::string& dataset) const {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  size_t n = 0;
  Handle set(impl_->open(dataset, H5T_STRING, &n), H5Dclose);
  Handle type(utf8_string_type(), H5Tclose);
  std::vector<char*> ptrs(n, nullptr);
  if (n && (!type.ok() || H5Dread(set.id, type.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0))
    impl_->fail("cannot read dataset '" + dataset + "' as variable-length strings");
  std::vector<std::string> out;
  for (char* p : ptrs) out.emplace_back(p ? p : "");
  if (n) {
    Handle space(H5Dget_space(set.id), H5Sclose);
    H5Dvlen_reclaim(type.id, space.id, H5P_DEFAULT, ptrs.data());
  }
  return out;
}

std::string Hdf5Reader::attribute_string(const std::string& name) const {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  Handle type(utf8_string_type(), H5Tclose);
  char* p = impl_->read_attribute<char*>(name, H5T_STRING, type.id);
  std::string out = p ? p : "";
  H5free_memory(p);
  return out;
}

int64_t Hdf5Reader::attribute_int(const std::string& name) const {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  return impl_->read_attribute<int64_t>(name, H5T_INTEGER, H5T_NATIVE_INT64);
}

double Hdf5Reader::attribute_double(const std::string& name) const {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  return impl_->read_attribute<double>(name, H5T_FLOAT, H5T_NATIVE_DOUBLE);
}

}  // namespace rass::io
