// Lloyd-Max levels of the standard normal distribution, computed at first use (not tabulated).
#pragma once

namespace qsdpa::fmt {

// The 2^bits levels (bits 1..4), ascending. The pointer stays valid for the program's life.
const float* turbo_levels(int bits);
// The same levels in double precision (for tests of the classic table and of the distortion).
const double* turbo_levels_f64(int bits);
// Mean squared error per coordinate of the Gaussian quantizer with these levels.
double lloyd_max_distortion(int bits);

}  // namespace qsdpa::fmt
