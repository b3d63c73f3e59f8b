// The optimiser side of a training step (mindtf.kernels.sum_squares_op / adamw_op).
//
//   MindtfSumSquares   g_1, ..., g_k (any shapes)  ->  s (1,) = sum_i sum_j g_i[j]^2
//                      (one launch for all gradients; accumulated in double, per tensor)
//   MindtfAdamW        k params, k m, k v (all updated in place), k grads, hyper (6,),
//                      decay (k,)  ->  done (1,)
//                      hyper = (lr, beta1, beta2, eps, wd, coef); with g = coef * grad and
//                      wd_i = wd * decay_i (1 = decay, 0 = none), for every parameter i:
//                        m     <- m + (g - m) (1 - beta1)
//                        v     <- v + (g^2 - v) (1 - beta2)
//                        param <- param - lr (m / (sqrt(v) + eps) + wd_i param)
//                      the formula of MindSpore's AdamWeightDecay kernel; mindtf.training's AdamW
//                      folds the bias correction into lr, eps and wd, and the gradient clipping
//                      into coef: clipping + update is one launch and one pass over memory.
//
// The Python side declares param, m and v as written (RW_WRITE) with a memory side effect, like
// MindSpore's AdamWeightDecay, so graphs order reads and writes of them correctly; `done` is a
// token (0) that callers chain with ops.depend.
#include <cmath>

#include "common.h"

namespace {

constexpr int64_t kGrain = 262144;

double SumSquares(const float* g, int64_t n) {
  // blocks of float sums (vectorised) added in double: accurate for long tensors
  double total = 0.0;
  for (int64_t start = 0; start < n; start += 4096) {
    const int64_t end = start + 4096 < n ? start + 4096 : n;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t j = start; j < end; ++j) s += g[j] * g[j];
    total += static_cast<double>(s);
  }
  return total;
}

}  // namespace

MINDTF_AOT(MindtfSumSquares) {
  if (nparam < 2) return mindtf::kBadArity;
  if (!mindtf::AllF32(nparam, dtypes)) return mindtf::kBadDtype;
  const int k = nparam - 1;
  int64_t total = 0;
  for (int i = 0; i < k; ++i) total += mindtf::Numel(ndims[i], shapes[i]);
  std::vector<double> part(static_cast<size_t>(k), 0.0);
  const int nt = mindtf::ThreadsFor(total, kGrain);
  if (nt <= 1) {
    for (int i = 0; i < k; ++i)
      part[i] = SumSquares(static_cast<const float*>(params[i]),
                           mindtf::Numel(ndims[i], shapes[i]));
  } else {  // one tensor per task, tensors dealt out round-robin (deterministic sums)
    mindtf::Pool::Get().Run(nt, [&](int t, int count) {
      for (int i = t; i < k; i += count)
        part[i] = SumSquares(static_cast<const float*>(params[i]),
                             mindtf::Numel(ndims[i], shapes[i]));
    });
  }
  double s = 0.0;
  for (int i = 0; i < k; ++i) s += part[i];
  *static_cast<float*>(params[k]) = static_cast<float>(s);
  return mindtf::kOk;
}

// All parameters in one launch: params[0..k) param, [k..2k) m, [2k..3k) v (in place), [3k..4k)
// grad, then hyper (6,) and decay (k,) (1 = weight decay on this parameter, 0 = none), then the
// token. Every thread takes its share of every tensor (one wake-up per step, balanced).
MINDTF_AOT(MindtfAdamW) {
  if (nparam < 7 || (nparam - 3) % 4 != 0) return mindtf::kBadArity;
  const int k = (nparam - 3) / 4;
  if (!mindtf::AllF32(nparam, dtypes)) return mindtf::kBadDtype;
  int64_t total = 0;
  for (int i = 0; i < k; ++i) {
    const int64_t n = mindtf::Numel(ndims[i], shapes[i]);
    for (int j = 1; j < 4; ++j)
      if (mindtf::Numel(ndims[i + j * k], shapes[i + j * k]) != n) return mindtf::kBadShape;
    total += n;
  }
  if (mindtf::Numel(ndims[4 * k], shapes[4 * k]) != 6 ||
      mindtf::Numel(ndims[4 * k + 1], shapes[4 * k + 1]) != k)
    return mindtf::kBadShape;
  const float* h = static_cast<const float*>(params[4 * k]);
  const float* decay = static_cast<const float*>(params[4 * k + 1]);
  const float lr = h[0], one_b1 = 1.0f - h[1], one_b2 = 1.0f - h[2], eps = h[3];
  const float coef = h[5];
  mindtf::Pool::Get().Run(mindtf::ThreadsFor(total, kGrain), [&](int t, int count) {
    for (int i = 0; i < k; ++i) {
      int64_t begin, end;
      mindtf::Split(mindtf::Numel(ndims[i], shapes[i]), t, count, &begin, &end);
      float* p = static_cast<float*>(params[i]);
      float* m = static_cast<float*>(params[i + k]);
      float* v = static_cast<float*>(params[i + 2 * k]);
      const float* g = static_cast<const float*>(params[i + 3 * k]);
      const float wd = h[4] * decay[i];
#pragma omp simd
      for (int64_t e = begin; e < end; ++e) {
        const float gi = g[e] * coef;
        const float mi = m[e] + (gi - m[e]) * one_b1;
        const float vi = v[e] + (gi * gi - v[e]) * one_b2;
        m[e] = mi;
        v[e] = vi;
        p[e] -= lr * (mi / (std::sqrt(vi) + eps) + wd * p[e]);
      }
    }
  });
  *static_cast<float*>(params[nparam - 1]) = 0.0f;
  return mindtf::kOk;
}
