#include "qsdpa/error.hpp"
#include "qsdpa/tensor.hpp"

namespace qsdpa {

int dtype_size(DType t) {
  switch (t) {
    case DType::f32: case DType::u32: case DType::i32: return 4;
    case DType::f16: case DType::bf16: return 2;
    case DType::u8: case DType::boolean: return 1;
    case DType::i64: return 8;
  }
  throw Error("dtype: invalid value " + std::to_string(int(t)));
}

std::string to_string(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f16: return "float16";
    case DType::bf16: return "bfloat16";
    case DType::u8: return "uint8";
    case DType::boolean: return "bool";
    case DType::u32: return "uint32";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
  }
  throw Error("dtype: invalid value " + std::to_string(int(t)));
}

}  // namespace qsdpa
