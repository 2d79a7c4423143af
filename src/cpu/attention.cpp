// Fused attention on the CPU (SPEC §2).
//
// Work split: one work unit = (sequence b, KV head, chunk of query positions, split of the keys).
// A unit serves every query row that reads its KV head (G = Hq/Hkv heads x the chunk's positions), so
// each K/V tile is decoded once and used by all of them (GQA sharing). Splits of the key range give
// the threads enough units at B=1; their partial (max, sum, unnormalised output) are merged exactly by
// log-sum-exp, with the sink added once.
//
// Per unit: keys are walked in tiles of T rows (T*D*4 bytes = 16 KB, L1-resident): decode the K tile
// to f32 (dequantization fused: only the tile exists in f32, never the cache), scores for all rows,
// masks, online softmax in f32, decode the V tile, accumulate P*V. Turbo keys are handled by rotating
// q once (q.x = (Rq).(Rx)); turbo values by accumulating in the rotated basis and applying R^T to the
// finished output.
//
// Bytes and operations per call: the cache bytes once (codes + scales + biases of K and V), plus q and
// out. Per cached element: one decode, and G (rows per KV head) multiply-adds in the score and again in
// the value loop. Measured numbers: README / bench/results (2-core AVX-512 CPU).
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "core/attention_common.hpp"
#include "core/row_codec.hpp"
#include "cpu/kernels.hpp"
#include "qsdpa/build_info.hpp"

namespace qsdpa {
namespace {

using detail::kNegInf;

bool log_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("QSDPA_LOG");
    return v && std::strcmp(v, "0") != 0 && *v;
  }();
  return on;
}

struct Plan {
  int64_t B, Hq, Lq, D, Hkv, N, G;
  int64_t q_chunk;     // query positions per unit
  int64_t q_chunks;
  int64_t splits;      // key splits per (b, head, q chunk)
  int64_t rows_max;    // G * q_chunk
  int64_t rows4;       // rows_max rounded up to 4
  int tile;            // keys per tile
  int threads;
};

Plan make_plan(const AttentionArgs& a) {
  Plan p;
  p.B = a.q.shape[0]; p.Hq = a.q.shape[1]; p.Lq = a.q.shape[2]; p.D = a.q.shape[3];
  p.Hkv = a.k.heads; p.N = a.k.tokens; p.G = p.Hq / p.Hkv;
  p.threads = a.threads > 0 ? a.threads : omp_get_max_threads();
  p.q_chunk = std::clamp<int64_t>(64 / p.G, 1, p.Lq);
  p.q_chunks = (p.Lq + p.q_chunk - 1) / p.q_chunk;
  const int64_t base = p.B * p.Hkv * p.q_chunks;
  // Enough units for every thread several times over, each split keeping >= 256 keys.
  const int64_t want = (4 * int64_t(p.threads) + base - 1) / base;
  p.splits = std::clamp<int64_t>(want, 1, std::max<int64_t>(1, p.N / 256));
  p.rows_max = p.G * p.q_chunk;
  p.rows4 = (p.rows_max + 3) / 4 * 4;
  // Keys per tile: the f32 tile stays within 16 KB (L1). Measured at N=32K, GQA 4, D=128 with the
  // decoders' row prefetch: 32 keys is the best or within noise of it for every format (16 and 64
  // cost 5-45% more for f16 and mxfp8).
  p.tile = int(std::clamp<int64_t>(4096 / p.D / 4 * 4, 8, 64));
  return p;
}

struct Kernels {
  const cpu::DenseKernels* dense;
  cpu::TileDecoder k_decode, v_decode;
};

Kernels pick_kernels(const AttentionArgs& a) {
  Kernels k{&cpu::generic_dense(), cpu::generic_decoder(a.k.format), cpu::generic_decoder(a.v.format)};
#if QSDPA_HAVE_AVX512
  const int64_t D = a.q.shape[3];
  if (cpu_has_avx512() && D % 16 == 0) {
    k.dense = &cpu::avx512_dense();
    if (auto f = cpu::avx512_decoder(a.k.format, D)) k.k_decode = f;
    if (auto f = cpu::avx512_decoder(a.v.format, D)) k.v_decode = f;
  }
#endif
  if (log_enabled()) {
    static std::mutex mu;
    std::lock_guard<std::mutex> lock(mu);
    const bool fast = k.dense != &cpu::generic_dense();
    std::fprintf(stderr, "qsdpa: cpu attention K=%s V=%s D=%lld: dense loops %s, K decoder %s, V decoder %s\n",
                 to_string(a.k.format).c_str(), to_string(a.v.format).c_str(), (long long)D,
                 fast ? "avx512" : "generic", k.k_decode.fn == cpu::generic_decoder(a.k.format).fn ? "generic" : "avx512",
                 k.v_decode.fn == cpu::generic_decoder(a.v.format).fn ? "generic" : "avx512");
  }
  return k;
}

// Partial state of one unit: rows_max x (m, l, acc[D]).
struct Partials {
  std::vector<float> m, l, acc;
};

struct Scratch {
  std::vector<float> q, tile, s, acc, m, l, row;
};

void run_unit(const AttentionArgs& a, const Plan& p, const Kernels& kern, int64_t unit, Scratch& sc, Partials& out) {
  const int64_t split = unit % p.splits;
  const int64_t qc = (unit / p.splits) % p.q_chunks;
  const int64_t hk = (unit / (p.splits * p.q_chunks)) % p.Hkv;
  const int64_t b = unit / (p.splits * p.q_chunks * p.Hkv);
  const int64_t i0 = qc * p.q_chunk, i1 = std::min(p.Lq, i0 + p.q_chunk);
  const int64_t rows = (i1 - i0) * p.G;
  const int64_t D = p.D;
  const int64_t n = detail::kv_len(a, b);
  const int64_t s_lo = n * split / p.splits, s_hi = n * (split + 1) / p.splits;

  // Rows r = (i - i0) * G + g, query head hk*G + g at position i.
  std::vector<detail::KeyRange> range(size_t(i1 - i0));
  int64_t lo = s_hi, hi = s_lo;
  for (int64_t i = i0; i < i1; ++i) {
    detail::KeyRange r = detail::visible_keys(a, n, p.Lq, i);
    r.lo = std::max(r.lo, s_lo);
    r.hi = std::min(r.hi, s_hi);
    range[size_t(i - i0)] = r;
    if (r.lo < r.hi) {
      lo = std::min(lo, r.lo);
      hi = std::max(hi, r.hi);
    }
  }

  const int T = p.tile;
  sc.q.assign(size_t(p.rows4 * D), 0.0f);
  sc.acc.assign(size_t(p.rows4 * D), 0.0f);
  sc.m.assign(size_t(p.rows4), kNegInf);
  sc.l.assign(size_t(p.rows4), 0.0f);
  sc.tile.resize(size_t(T * D));
  sc.s.resize(size_t(p.rows4 * T));

  if (lo < hi) {
    const fmt::RowCodec kc = make_row_codec(a.k.format, a.k.tensor_scale(hk));
    const fmt::RowCodec vc = make_row_codec(a.v.format, a.v.tensor_scale(hk));
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = i0 + r / p.G, h = hk * p.G + r % p.G;
      float* qr = &sc.q[size_t(r * D)];
      for (int64_t d = 0; d < D; ++d) qr[d] = detail::load_float(a.q.data, a.q.dtype, a.q.offset(b, h, i, d)) * a.scale;
      if (a.k.format.rotated()) fmt::turbo_rotate(qr, int(D), a.k.format.seed);
      if (kern.k_decode.order != cpu::TileOrder::natural) {  // q in the K tile's order
        sc.row.assign(qr, qr + D);
        cpu::to_tile_order(kern.k_decode.order, sc.row.data(), qr, D);
      }
    }
    const bool has_mask = !a.mask.empty();
    for (int64_t t0 = lo; t0 < hi; t0 += T) {
      const int cnt = int(std::min<int64_t>(T, hi - t0));
      const int cnt4 = (cnt + 3) / 4 * 4;
      kern.k_decode.fn(kc, a.k, b, hk, t0, cnt, sc.tile.data());
      std::fill(sc.tile.begin() + int64_t(cnt) * D, sc.tile.begin() + int64_t(cnt4) * D, 0.0f);
      kern.dense->scores(sc.q.data(), p.rows4, sc.tile.data(), cnt4, D, sc.s.data(), T);

      // Masks and the online softmax, row by row. Masked scores become -inf; a row whose visible keys
      // cover the tile and that has no array mask skips the per-key pass.
      for (int64_t r = 0; r < p.rows4; ++r) {
        float* s = &sc.s[size_t(r * T)];
        if (r >= rows) {
          std::fill(s, s + cnt4, 0.0f);
          continue;
        }
        const int64_t i = i0 + r / p.G, h = hk * p.G + r % p.G;
        const detail::KeyRange kr = range[size_t(i - i0)];
        const int64_t vis_lo = std::max<int64_t>(kr.lo - t0, 0), vis_hi = std::clamp<int64_t>(kr.hi - t0, 0, cnt);
        if (has_mask || vis_lo > 0 || vis_hi < cnt4) {
          for (int t = 0; t < cnt4; ++t) {
            if (t < vis_lo || t >= vis_hi) s[t] = kNegInf;
            else if (has_mask) s[t] += detail::mask_term(a.mask, b, h, i, t0 + t);
          }
        }
        float m_new;
        const float m_old = sc.m[size_t(r)];
        const float sum = kern.dense->softmax_row(s, cnt4, m_old, &m_new);
        if (m_new == kNegInf) continue;  // nothing visible yet: s is all zeros
        const float alpha = m_old == kNegInf ? 0.0f : std::exp(m_old - m_new);
        if (alpha != 1.0f) {
          float* acc = &sc.acc[size_t(r * D)];
          for (int64_t d = 0; d < D; ++d) acc[d] *= alpha;
        }
        sc.l[size_t(r)] = sc.l[size_t(r)] * alpha + sum;
        sc.m[size_t(r)] = m_new;
      }

      kern.v_decode.fn(vc, a.v, b, hk, t0, cnt, sc.tile.data());
      std::fill(sc.tile.begin() + int64_t(cnt) * D, sc.tile.begin() + int64_t(cnt4) * D, 0.0f);
      kern.dense->accumulate(sc.s.data(), T, p.rows4, sc.tile.data(), cnt4, D, sc.acc.data());
    }
  }
  std::copy(sc.m.begin(), sc.m.begin() + rows, out.m.begin() + unit * p.rows_max);
  std::copy(sc.l.begin(), sc.l.begin() + rows, out.l.begin() + unit * p.rows_max);
  std::copy(sc.acc.begin(), sc.acc.begin() + rows * D, out.acc.begin() + unit * p.rows_max * D);
}

// Merges the splits of (b, hk, qc), adds the sink, normalises, un-rotates turbo values, writes out/lse.
void finish_group(const AttentionArgs& a, const Plan& p, cpu::TileOrder v_order, int64_t group, const Partials& part,
                  std::vector<float>& row, std::vector<float>& tmp) {
  const int64_t qc = group % p.q_chunks;
  const int64_t hk = (group / p.q_chunks) % p.Hkv;
  const int64_t b = group / (p.q_chunks * p.Hkv);
  const int64_t i0 = qc * p.q_chunk, i1 = std::min(p.Lq, i0 + p.q_chunk);
  const int64_t D = p.D;
  row.resize(size_t(D));
  for (int64_t r = 0; r < (i1 - i0) * p.G; ++r) {
    const int64_t i = i0 + r / p.G, h = hk * p.G + r % p.G;
    float m = a.sinks ? a.sinks[h] : kNegInf;
    for (int64_t s = 0; s < p.splits; ++s) m = std::max(m, part.m[size_t((group * p.splits + s) * p.rows_max + r)]);
    std::fill(row.begin(), row.end(), 0.0f);
    float l = 0.0f;
    if (m != kNegInf) {
      l = a.sinks ? std::exp(a.sinks[h] - m) : 0.0f;
      for (int64_t s = 0; s < p.splits; ++s) {
        const int64_t u = group * p.splits + s;
        const float ms = part.m[size_t(u * p.rows_max + r)];
        if (ms == kNegInf) continue;
        const float w = std::exp(ms - m);
        l += w * part.l[size_t(u * p.rows_max + r)];
        const float* acc = &part.acc[size_t((u * p.rows_max + r) * D)];
        for (int64_t d = 0; d < D; ++d) row[size_t(d)] += w * acc[d];
      }
    }
    if (l != 0.0f) {  // NaN too: the row comes out NaN
      const float inv = 1.0f / l;
      for (int64_t d = 0; d < D; ++d) row[size_t(d)] *= inv;
      if (v_order != cpu::TileOrder::natural) {  // the V tile's order back to natural
        tmp.assign(row.begin(), row.end());
        cpu::from_tile_order(v_order, tmp.data(), row.data(), D);
      }
      if (a.v.format.rotated()) fmt::turbo_unrotate(row.data(), int(D), a.v.format.seed);
    }
    for (int64_t d = 0; d < D; ++d) detail::store_float(a.out.data, a.out.dtype, a.out.offset(b, h, i, d), row[size_t(d)]);
    if (a.lse) a.lse[(b * p.Hq + h) * p.Lq + i] = l == 0.0f ? kNegInf : m + std::log(l);  // NaN stays NaN
  }
}

}  // namespace

namespace cpu {

void attention(const AttentionArgs& a) {
  const Plan p = make_plan(a);
  const Kernels kern = pick_kernels(a);
  const int64_t groups = p.B * p.Hkv * p.q_chunks;
  const int64_t units = groups * p.splits;
  Partials part;
  part.m.resize(size_t(units * p.rows_max));
  part.l.resize(size_t(units * p.rows_max));
  part.acc.resize(size_t(units * p.rows_max * p.D));
#pragma omp parallel num_threads(p.threads)
  {
    Scratch sc;
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < units; ++u) run_unit(a, p, kern, u, sc, part);
    std::vector<float> row, tmp;
#pragma omp for schedule(static)
    for (int64_t g = 0; g < groups; ++g) finish_group(a, p, kern.v_decode.order, g, part, row, tmp);
  }
}

}  // namespace cpu

void attention_unfused(const AttentionArgs& a, float* k_buffer, float* v_buffer) {
  validate(a);
  const int threads = a.threads > 0 ? a.threads : omp_get_max_threads();
  dequantize(a.k, k_buffer, threads);
  dequantize(a.v, v_buffer, threads);
  auto as_f32 = [&](const CacheView& c, const float* buf) {
    CacheView v;
    v.format = parse_format("f32");
    v.batch = c.batch; v.heads = c.heads; v.tokens = c.tokens; v.dim = c.dim;
    v.codes = reinterpret_cast<const uint8_t*>(buf);
    v.code_strides[2] = c.dim * 4;
    v.code_strides[1] = c.dim * 4 * c.tokens;
    v.code_strides[0] = c.dim * 4 * c.tokens * c.heads;
    return v;
  };
  AttentionArgs b = a;
  b.k = as_f32(a.k, k_buffer);
  b.v = as_f32(a.v, v_buffer);
  cpu::attention(b);
}

}  // namespace qsdpa
