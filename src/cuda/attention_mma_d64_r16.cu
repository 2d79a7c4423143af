// Tensor-core attention instances for D = 64, up to 16 query rows per KV head.
#include "cuda/attention_mma.cuh"

namespace qsdpa::cuda::mma {
template Instance pick_pair<64, 2>(Fam, Fam);
}  // namespace qsdpa::cuda::mma
