// GELU, tanh approximation (GPT-2's "gelu_new"), forward and backward (mindtf.kernels.gelu_tanh).
//
//   forward   x  ->  y = x * s,   s = sigmoid(u),  u = k (x + c x^3)
//             (0.5 (1 + tanh(z)) = sigmoid(2 z), so k = 2 sqrt(2 / pi), c = 0.044715)
//   backward  dy, x  ->  dx = dy * (s + x s (1 - s) k (1 + 3 c x^2))
//
// Element-wise over any shape; the elements are split over the pool's threads in contiguous
// blocks (common.h).
#include "common.h"

namespace {

constexpr float kK = 1.5957691216057308f;  // 2 * sqrt(2 / pi)
constexpr float kC = 0.044715f;
constexpr int64_t kGrain = 131072;

}  // namespace

MINDTF_AOT(MindtfGeluTanh) {
  if (const int st = mindtf::CheckF32Args(nparam, 2, dtypes)) return st;
  const int64_t n = mindtf::Numel(ndims[0], shapes[0]);
  const float* x = static_cast<const float*>(params[0]);
  float* y = static_cast<float*>(params[1]);
  const int nt = mindtf::ThreadsFor(n, kGrain);
  mindtf::ParallelFor(n, nt, [&](int, int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const float v = x[i];
      y[i] = v * mindtf::SigmoidF(kK * (v + kC * v * v * v));
    }
  });
  return mindtf::kOk;
}

MINDTF_AOT(MindtfGeluTanhGrad) {
  if (const int st = mindtf::CheckF32Args(nparam, 3, dtypes)) return st;
  const int64_t n = mindtf::Numel(ndims[0], shapes[0]);
  if (mindtf::Numel(ndims[1], shapes[1]) != n) return mindtf::kBadShape;
  const float* dy = static_cast<const float*>(params[0]);
  const float* x = static_cast<const float*>(params[1]);
  float* dx = static_cast<float*>(params[2]);
  const int nt = mindtf::ThreadsFor(n, kGrain);
  mindtf::ParallelFor(n, nt, [&](int, int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const float v = x[i];
      const float s = mindtf::SigmoidF(kK * (v + kC * v * v * v));
      dx[i] = dy[i] * (s + v * s * (1.0f - s) * kK * (1.0f + 3.0f * kC * v * v));
    }
  });
  return mindtf::kOk;
}
