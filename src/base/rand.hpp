// A fast non-cryptographic generator for scheduling decisions (steal order, race-mode
// shuffles, stack offsets). wyrand (Wang Yi, public domain), as Go's runtime.fastrand
// uses since Go 1.17: one multiply per number, good equidistribution.
#pragma once

#include <cstdint>

namespace gort::base {

class FastRand {
 public:
  explicit FastRand(std::uint64_t seed = 0x9E3779B97F4A7C15ull) : state_(seed) {}

  std::uint64_t next() {
    state_ += 0xa0761d6478bd642full;
    __uint128_t t = static_cast<__uint128_t>(state_) * (state_ ^ 0xe7037ed1a0b428dbull);
    return static_cast<std::uint64_t>(t >> 64) ^ static_cast<std::uint64_t>(t);
  }
  // Uniform in [0, n) by Lemire's multiply-shift (the bias is below 2^-32 for small n).
  std::uint32_t below(std::uint32_t n) {
    return static_cast<std::uint32_t>(
        (static_cast<std::uint64_t>(static_cast<std::uint32_t>(next())) * n) >> 32);
  }

 private:
  std::uint64_t state_;
};

}  // namespace gort::base
