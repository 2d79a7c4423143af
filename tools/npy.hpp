// Reading and writing NumPy .npy files (format versions 1.0-3.0, C order, little-endian).
// Reads validate magic, version, header and the exact data size; writes go to a temporary name that
// is renamed into place, so a crash never leaves a half-written file under the real name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qsdpa::npy {

struct Array {
  std::string descr;            // numpy dtype string: "<f4", "<f2", "<u4", "|u1", "<u2", "|b1", "<i8", ...
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;    // raw little-endian bytes

  int64_t size() const;         // number of elements
  int item_size() const;
};

Array load(const std::string& path);
void save(const std::string& path, const Array& a);

// Writes `bytes` to path atomically (temporary file in the same folder, then rename).
void write_file_atomic(const std::string& path, const std::string& bytes);

// Converts a float array (f4/f2) to float32 values; throws naming `what` otherwise.
std::vector<float> to_f32(const Array& a, const std::string& what);
Array from_f32(const std::vector<float>& v, std::vector<int64_t> shape);
Array from_bytes(std::string descr, std::vector<int64_t> shape, const void* data, size_t nbytes);

}  // namespace qsdpa::npy
