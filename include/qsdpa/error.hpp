// Errors thrown by qsdpa. Every invalid call throws qsdpa::Error, whose message names the argument,
// what was expected and what was given; CUDA failures throw qsdpa::CudaError.
#pragma once

#include <stdexcept>
#include <string>

namespace qsdpa {

class Error : public std::invalid_argument {
 public:
  explicit Error(const std::string& what) : std::invalid_argument(what) {}
};

class CudaError : public std::runtime_error {
 public:
  CudaError(const std::string& call, const std::string& cuda_message)
      : std::runtime_error(call + " failed: " + cuda_message), call_(call) {}
  const std::string& call() const { return call_; }

 private:
  std::string call_;
};

}  // namespace qsdpa
