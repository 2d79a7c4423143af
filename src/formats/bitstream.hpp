// The packed-code layout of SPEC §1 (MLX's): the codes of one row form one little-endian bit stream,
// value i in bits [i*b, (i+1)*b). Rows are addressed as bytes because a 3-bit row at D=64 is 24 bytes
// and need not be word aligned; reading byte by byte gives the same result as reading uint32 words on a
// little-endian machine.
#pragma once

#include "scalar.hpp"

namespace qsdpa::fmt {

// Code i of a row packed with `bits` bits per value (1..8).
QSDPA_HD uint32_t get_code(const uint8_t* row, int64_t i, int bits) {
  const int64_t bit = i * bits;
  const int64_t byte = bit >> 3;
  const int shift = int(bit & 7);
  uint32_t window = row[byte];
  if (shift + bits > 8) window |= uint32_t(row[byte + 1]) << 8;
  return (window >> shift) & ((1u << bits) - 1u);
}

// Writes code i; the row must have been zeroed first (codes are OR-ed in).
QSDPA_HD void put_code(uint8_t* row, int64_t i, int bits, uint32_t code) {
  const int64_t bit = i * bits;
  const int64_t byte = bit >> 3;
  const int shift = int(bit & 7);
  const uint32_t v = (code & ((1u << bits) - 1u)) << shift;
  row[byte] |= uint8_t(v & 0xFFu);
  if (shift + bits > 8) row[byte + 1] |= uint8_t(v >> 8);
}

}  // namespace qsdpa::fmt
