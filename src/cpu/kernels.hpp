// The CPU attention's building blocks, apart from the algorithm (attention.cpp): tile decoders per
// format and the small dense loops (scores, P*V, exp). Two implementations: portable C++ (generic)
// and AVX-512 (kernels_avx512.cpp), chosen at run time.
#pragma once

#include <cstdint>

#include "formats/codec.hpp"
#include "qsdpa/attention.hpp"

namespace qsdpa::cpu {

// Decodes rows t0..t0+count of head (b, h) into out[count][dim] (f32, turbo in its rotated basis).
using DecodeTileFn = void (*)(const fmt::RowCodec& codec, const CacheView& cache, int64_t b, int64_t h,
                              int64_t t0, int count, float* out);

// How a decoder lays a row out in the tile. `natural`: value d at position d. `nibble_split` (4-bit
// codes): within each 32-value chunk, the 16 even values first, then the 16 odd ones — the order in
// which a byte's two nibbles come out cheapest. Attention puts q in the same order for K and takes
// the output back from it for V; nothing else sees it.
enum class TileOrder : uint8_t { natural, nibble_split };

struct TileDecoder {
  DecodeTileFn fn = nullptr;
  TileOrder order = TileOrder::natural;
  explicit operator bool() const { return fn != nullptr; }
};

// Reorders one row of `dim` values (dim a multiple of 32) between natural and tile order.
void to_tile_order(TileOrder order, const float* natural, float* tiled, int64_t dim);
void from_tile_order(TileOrder order, const float* tiled, float* natural, int64_t dim);

struct DenseKernels {
  // s[r][t] = dot(q[r], k[t]) for r < rows4, t < tokens4 (both multiples of 4); s row stride s_stride.
  void (*scores)(const float* q, int64_t rows4, const float* k, int tokens4, int64_t dim, float* s, int s_stride);
  // acc[r][:] += sum_{t < tokens} p[r][t] * v[t][:] for r < rows4.
  void (*accumulate)(const float* p, int p_stride, int64_t rows4, const float* v, int tokens, int64_t dim, float* acc);
  // One row of the online softmax over a tile: m_new = max(m_old, max s); s[t] <- exp(s[t] - m_new);
  // returns sum_t s[t]. When m_new is -inf (nothing visible yet) s is zeroed and 0 returned.
  float (*softmax_row)(float* s, int n, float m_old, float* m_new);
};

// The fused CPU attention (attention.cpp); arguments already validated.
void attention(const AttentionArgs& args);

const DenseKernels& generic_dense();
TileDecoder generic_decoder(const Format& f);

#if QSDPA_HAVE_AVX512
const DenseKernels& avx512_dense();        // needs dim % 16 == 0
TileDecoder avx512_decoder(const Format& f, int64_t dim);  // empty when the format/dim has no fast path
#endif

}  // namespace qsdpa::cpu
