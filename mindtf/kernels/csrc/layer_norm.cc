// LayerNorm over the last axis, forward and backward (mindtf.kernels.layer_norm).
//
//   forward   x (N, D), gamma (D), beta (D), eps (1)  ->  y (N, D), mean (N), rstd (N)
//             mean = sum_j x_j / D,  rstd = 1 / sqrt(sum_j (x_j - mean)^2 / D + eps)
//             y = (x - mean) * rstd * gamma + beta
//   backward  dy (N, D), x (N, D), gamma (D), mean (N), rstd (N)  ->  dx (N, D), dgamma, dbeta
//             xhat = (x - mean) * rstd,  g = dy * gamma
//             dx = rstd * (g - mean_j(g) - xhat * mean_j(g * xhat))
//             dgamma = sum_rows dy * xhat,  dbeta = sum_rows dy
//
// Rows are split over the pool's threads (common.h); each thread sums its rows' dgamma/dbeta in
// its own double buffer and the buffers are added column by column at the end (deterministic for
// a given thread count). Inner loops run over contiguous columns and vectorise (omp simd).
#include <cmath>
#include <vector>

#include "common.h"

namespace {

constexpr int64_t kGrain = 131072;  // elements per thread before another thread helps

void NormRow(const float* x, const float* gamma, const float* beta, float eps, int64_t d,
             float* y, float* mean_out, float* rstd_out) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < d; ++j) s += x[j];
  const float mean = s / static_cast<float>(d);
  float v = 0.0f;
#pragma omp simd reduction(+ : v)
  for (int64_t j = 0; j < d; ++j) {
    const float c = x[j] - mean;
    v += c * c;
  }
  const float rstd = 1.0f / std::sqrt(v / static_cast<float>(d) + eps);
#pragma omp simd
  for (int64_t j = 0; j < d; ++j) y[j] = (x[j] - mean) * rstd * gamma[j] + beta[j];
  *mean_out = mean;
  *rstd_out = rstd;
}

// one row of dx, and this row's contribution to the per-thread dgamma/dbeta sums
void GradRow(const float* dy, const float* x, const float* gamma, float mean, float rstd,
             int64_t d, float* dx, double* pg, double* pb) {
  float a = 0.0f, b = 0.0f;
#pragma omp simd reduction(+ : a, b)
  for (int64_t j = 0; j < d; ++j) {
    const float xhat = (x[j] - mean) * rstd;
    const float g = dy[j] * gamma[j];
    a += g;
    b += g * xhat;
    pg[j] += static_cast<double>(dy[j] * xhat);
    pb[j] += static_cast<double>(dy[j]);
  }
  a /= static_cast<float>(d);
  b /= static_cast<float>(d);
#pragma omp simd
  for (int64_t j = 0; j < d; ++j) {
    const float xhat = (x[j] - mean) * rstd;
    dx[j] = rstd * (dy[j] * gamma[j] - a - xhat * b);
  }
}

}  // namespace

MINDTF_AOT(MindtfLayerNorm) {
  if (const int st = mindtf::CheckF32Args(nparam, 7, dtypes)) return st;
  const int64_t d = mindtf::Width(ndims[0], shapes[0]);
  const int64_t n = mindtf::Rows(ndims[0], shapes[0]);
  if (mindtf::Numel(ndims[1], shapes[1]) != d || mindtf::Numel(ndims[2], shapes[2]) != d)
    return mindtf::kBadShape;
  if (n == 0 || d == 0) return mindtf::kOk;
  const float* x = static_cast<const float*>(params[0]);
  const float* gamma = static_cast<const float*>(params[1]);
  const float* beta = static_cast<const float*>(params[2]);
  const float eps = *static_cast<const float*>(params[3]);
  float* y = static_cast<float*>(params[4]);
  float* mean = static_cast<float*>(params[5]);
  float* rstd = static_cast<float*>(params[6]);
  const int nt = mindtf::ThreadsFor(n * d, kGrain);
  mindtf::ParallelFor(n, nt, [&](int, int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      NormRow(x + r * d, gamma, beta, eps, d, y + r * d, mean + r, rstd + r);
  });
  return mindtf::kOk;
}

MINDTF_AOT(MindtfLayerNormGrad) {
  if (const int st = mindtf::CheckF32Args(nparam, 8, dtypes)) return st;
  const int64_t d = mindtf::Width(ndims[0], shapes[0]);
  const int64_t n = mindtf::Rows(ndims[0], shapes[0]);
  if (mindtf::Numel(ndims[1], shapes[1]) != n * d || mindtf::Numel(ndims[3], shapes[3]) != n)
    return mindtf::kBadShape;
  const float* dy = static_cast<const float*>(params[0]);
  const float* x = static_cast<const float*>(params[1]);
  const float* gamma = static_cast<const float*>(params[2]);
  const float* mean = static_cast<const float*>(params[3]);
  const float* rstd = static_cast<const float*>(params[4]);
  float* dx = static_cast<float*>(params[5]);
  float* dgamma = static_cast<float*>(params[6]);
  float* dbeta = static_cast<float*>(params[7]);
  const int nt = mindtf::ThreadsFor(n * d, kGrain);
  // per thread: dgamma partial sums (d), then dbeta partial sums (d)
  std::vector<double> part(static_cast<size_t>(2 * nt * d), 0.0);
  mindtf::ParallelFor(n, nt, [&](int t, int64_t begin, int64_t end) {
    double* pg = part.data() + 2 * t * d;
    double* pb = pg + d;
    for (int64_t r = begin; r < end; ++r)
      GradRow(dy + r * d, x + r * d, gamma, mean[r], rstd[r], d, dx + r * d, pg, pb);
  });
  for (int64_t j = 0; j < d; ++j) {  // add the threads' partial sums (unused ones are 0)
    double sg = 0.0, sb = 0.0;
    for (int u = 0; u < nt; ++u) {
      sg += part[2 * u * d + j];
      sb += part[2 * u * d + d + j];
    }
    dgamma[j] = static_cast<float>(sg);
    dbeta[j] = static_cast<float>(sb);
  }
  return mindtf::kOk;
}
