// Tensor-core attention instances for D = 256, up to 4 query rows per KV head (lo terms as columns:
// tile code 0, see tile_rows).
#include "cuda/attention_mma.cuh"

namespace qsdpa::cuda::mma {
template Instance pick_pair<256, 0>(Fam, Fam);
}  // namespace qsdpa::cuda::mma
