#include "npy.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "formats/scalar.hpp"
#include "qsdpa/error.hpp"

namespace qsdpa::npy {
namespace {

[[noreturn]] void bad(const std::string& path, const std::string& why) {
  throw Error("npy file '" + path + "': " + why);
}

int descr_size(const std::string& d) {
  if (d.size() < 3) return 0;
  const std::string kind = d.substr(1);
  if (kind == "f4" || kind == "u4" || kind == "i4") return 4;
  if (kind == "f2" || kind == "u2" || kind == "i2") return 2;
  if (kind == "u1" || kind == "b1" || kind == "i1") return 1;
  if (kind == "f8" || kind == "i8" || kind == "u8") return 8;
  return 0;
}

}  // namespace

int64_t Array::size() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}
int Array::item_size() const { return descr_size(descr); }

Array load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) bad(path, "cannot open for reading");
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) bad(path, "not an npy file (bad magic)");
  const int major = uint8_t(bytes[6]);
  size_t header_len, offset;
  if (major == 1) {
    header_len = uint8_t(bytes[8]) | (size_t(uint8_t(bytes[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) bad(path, "truncated header");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= size_t(uint8_t(bytes[8 + i])) << (8 * i);
    offset = 12;
  } else {
    bad(path, "unsupported npy version " + std::to_string(major));
  }
  if (offset + header_len > bytes.size()) bad(path, "truncated header");
  const std::string header = bytes.substr(offset, header_len);
  std::smatch m;
  Array a;
  if (!std::regex_search(header, m, std::regex(R"('descr'\s*:\s*'([^']*)')"))) bad(path, "header has no 'descr'");
  a.descr = m[1];
  if (a.descr.size() == 3 && a.descr[0] == '=') a.descr[0] = '<';
  if (descr_size(a.descr) == 0 || a.descr[0] == '>')
    bad(path, "unsupported dtype '" + a.descr + "' (expected little-endian f4, f2, f8, u4, u2, u1, b1, i4, i8)");
  if (!std::regex_search(header, m, std::regex(R"('fortran_order'\s*:\s*(True|False))"))) bad(path, "header has no 'fortran_order'");
  if (m[1] == "True") bad(path, "Fortran-order arrays are not supported; save with C order");
  if (!std::regex_search(header, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))"))) bad(path, "header has no 'shape'");
  std::stringstream ss(m[1].str());
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    try {
      size_t used = 0;
      const long long v = std::stoll(item, &used);
      if (used != item.size() || v < 0) throw std::invalid_argument("bad");
      a.shape.push_back(v);
    } catch (const std::exception&) {
      bad(path, "bad shape entry '" + item + "'");
    }
  }
  int64_t count = 1;
  for (int64_t s : a.shape)
    if (s != 0 && count > (int64_t(1) << 50) / s) bad(path, "shape is too large"); else count *= s;
  const size_t need = size_t(count) * size_t(a.item_size());
  const size_t have = bytes.size() - offset - header_len;
  if (have < need) bad(path, "truncated data: expected " + std::to_string(need) + " bytes, found " + std::to_string(have));
  if (have > need) bad(path, "trailing data: expected " + std::to_string(need) + " bytes, found " + std::to_string(have));
  a.data.assign(bytes.begin() + long(offset + header_len), bytes.end());
  return a;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error("cannot open '" + tmp + "' for writing");
    f.write(bytes.data(), std::streamsize(bytes.size()));
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      throw Error("write to '" + tmp + "' failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error("cannot rename '" + tmp + "' to '" + path + "'");
  }
}

void save(const std::string& path, const Array& a) {
  std::string shape = "(";
  for (size_t i = 0; i < a.shape.size(); ++i) shape += std::to_string(a.shape[i]) + (a.shape.size() == 1 || i + 1 < a.shape.size() ? "," : "");
  shape += ")";
  std::string header = "{'descr': '" + a.descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += char(1);
  out += char(0);
  out += char(header.size() & 0xFF);
  out += char(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char*>(a.data.data()), a.data.size());
  write_file_atomic(path, out);
}

std::vector<float> to_f32(const Array& a, const std::string& what) {
  std::vector<float> v(static_cast<size_t>(a.size()));
  if (a.descr == "<f4") {
    std::memcpy(v.data(), a.data.data(), v.size() * 4);
  } else if (a.descr == "<f2") {
    for (size_t i = 0; i < v.size(); ++i) {
      uint16_t h;
      std::memcpy(&h, a.data.data() + 2 * i, 2);
      v[i] = fmt::f16_to_f32(h);
    }
  } else {
    throw Error(what + ": expected float32 or float16 data, got dtype '" + a.descr + "'");
  }
  return v;
}

Array from_bytes(std::string descr, std::vector<int64_t> shape, const void* data, size_t nbytes) {
  Array a;
  a.descr = std::move(descr);
  a.shape = std::move(shape);
  a.data.assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + nbytes);
  return a;
}

Array from_f32(const std::vector<float>& v, std::vector<int64_t> shape) {
  return from_bytes("<f4", std::move(shape), v.data(), v.size() * 4);
}

}  // namespace qsdpa::npy
