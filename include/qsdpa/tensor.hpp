// Non-owning views of strided arrays, as the public API passes them.
#pragma once

#include <cstdint>
#include <string>

// Accessors of the views are used by CUDA kernels too.
#if defined(__CUDACC__)
#define QSDPA_VIEW_HD __host__ __device__
#else
#define QSDPA_VIEW_HD
#endif

namespace qsdpa {

enum class DType : uint8_t { f32, f16, bf16, u8, boolean, u32, i32, i64 };

int dtype_size(DType t);
std::string to_string(DType t);

// A view of up to 4 dimensions; strides are in elements (0 broadcasts a dimension).
struct TensorView {
  void* data = nullptr;
  DType dtype = DType::f32;
  int rank = 0;
  int64_t shape[4] = {1, 1, 1, 1};
  int64_t strides[4] = {0, 0, 0, 0};

  bool empty() const { return data == nullptr; }
  // Element offset of index (i0, i1, i2, i3) of a rank-4 view.
  QSDPA_VIEW_HD int64_t offset(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    return i0 * strides[0] + i1 * strides[1] + i2 * strides[2] + i3 * strides[3];
  }
};

// A contiguous (C order) rank-4 view.
inline TensorView contiguous_view(void* data, DType dtype, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  TensorView v;
  v.data = data;
  v.dtype = dtype;
  v.rank = 4;
  v.shape[0] = d0; v.shape[1] = d1; v.shape[2] = d2; v.shape[3] = d3;
  v.strides[3] = 1;
  v.strides[2] = d3;
  v.strides[1] = d2 * d3;
  v.strides[0] = d1 * d2 * d3;
  return v;
}

}  // namespace qsdpa
