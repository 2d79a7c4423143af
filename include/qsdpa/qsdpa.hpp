// qsdpa: fused scaled-dot-product attention over quantized KV caches.
#pragma once

#include "qsdpa/attention.hpp"
#include "qsdpa/build_info.hpp"
#include "qsdpa/cache.hpp"
#include "qsdpa/error.hpp"
#include "qsdpa/format.hpp"
#include "qsdpa/tensor.hpp"
