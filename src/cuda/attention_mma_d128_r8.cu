// Tensor-core attention instances for D = 128, up to 8 query rows per KV head.
#include "cuda/attention_mma.cuh"

namespace qsdpa::cuda::mma {
template Instance pick_pair<128, 1>(Fam, Fam);
}  // namespace qsdpa::cuda::mma
