// Masked softmax over the last axis, as attention uses it (mindtf.kernels.masked_softmax).
//
//   forward   scores (..., Tq, Tk) float32, mask (Tq, Tk) bool (true = may attend)  ->  w
//             w = softmax over the visible keys of each row, 0 at masked keys; a row with no
//             visible key gets 1/Tk everywhere (what masked_fill(-inf-ish) + softmax gives)
//   backward  w, dw, mask  ->  ds = w * (dw - sum_j dw_j w_j), 0 at masked keys (w is 0 there)
//             and 0 in rows without a visible key (masked_fill passes no gradient there)
//
// The mask is shared by every leading index (B, H): row r of scores uses mask row r % Tq.
// Rows are split over the pool's threads (common.h).
#include <limits>
#include <vector>

#include "common.h"

namespace {

constexpr int64_t kGrain = 131072;

// The (Tq, Tk) bool mask as an additive float bias (0 where visible, -inf where masked) and a
// per-query flag "sees some key": built once per call, so the row loops only add floats (a bool
// select per element measured 3x slower than the whole softmax without it).
struct MaskTable {
  std::vector<float> bias;
  std::vector<char> any;
  MaskTable(const bool* m, int64_t tq, int64_t tk)
      : bias(static_cast<size_t>(tq * tk)), any(static_cast<size_t>(tq), 0) {
    const float inf = std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < tq; ++i) {
      for (int64_t j = 0; j < tk; ++j) {
        const bool keep = m[i * tk + j];
        bias[i * tk + j] = keep ? 0.0f : -inf;
        any[i] = static_cast<char>(any[i] | keep);
      }
    }
  }
};

void SoftmaxRow(const float* s, const float* bias, bool any, int64_t tk, float* w) {
  if (!any) {  // every key masked: uniform weights
    const float u = 1.0f / static_cast<float>(tk);
#pragma omp simd
    for (int64_t j = 0; j < tk; ++j) w[j] = u;
    return;
  }
  float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
  for (int64_t j = 0; j < tk; ++j) {
    const float v = s[j] + bias[j];
    mx = v > mx ? v : mx;
  }
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < tk; ++j) {
    const float e = mindtf::ExpF(s[j] + bias[j] - mx);  // exp(-inf) = 0 at masked keys
    w[j] = e;
    sum += e;
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t j = 0; j < tk; ++j) w[j] *= inv;
}

// masked keys have w = 0 (forward), so they get 0 here too; rows without a visible key get 0
void SoftmaxGradRow(const float* w, const float* dw, bool any, int64_t tk, float* ds) {
  if (!any) {
#pragma omp simd
    for (int64_t j = 0; j < tk; ++j) ds[j] = 0.0f;
    return;
  }
  float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
  for (int64_t j = 0; j < tk; ++j) dot += dw[j] * w[j];
#pragma omp simd
  for (int64_t j = 0; j < tk; ++j) ds[j] = w[j] * (dw[j] - dot);
}

// (rows, Tq, Tk) of scores (..., Tq, Tk) with a (Tq, Tk) mask; false if the shapes disagree
bool Dims(int nd, const int64_t* s, int nm, const int64_t* ms, int64_t* rows, int64_t* tq,
          int64_t* tk) {
  if (nd < 2 || nm != 2 || ms[0] != s[nd - 2] || ms[1] != s[nd - 1]) return false;
  *tk = s[nd - 1];
  *tq = s[nd - 2];
  *rows = mindtf::Rows(nd, s);
  return true;
}

}  // namespace

MINDTF_AOT(MindtfMaskedSoftmax) {
  if (nparam != 3) return mindtf::kBadArity;
  if (!mindtf::IsF32(dtypes[0]) || !mindtf::IsF32(dtypes[2])) return mindtf::kBadDtype;
  if (std::strcmp(dtypes[1], "bool") != 0) return mindtf::kBadDtype;
  int64_t rows, tq, tk;
  if (!Dims(ndims[0], shapes[0], ndims[1], shapes[1], &rows, &tq, &tk)) return mindtf::kBadShape;
  if (rows == 0 || tk == 0) return mindtf::kOk;
  const float* s = static_cast<const float*>(params[0]);
  const MaskTable table(static_cast<const bool*>(params[1]), tq, tk);
  float* w = static_cast<float*>(params[2]);
  const int nt = mindtf::ThreadsFor(rows * tk, kGrain);
  mindtf::ParallelFor(rows, nt, [&](int, int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = r % tq;
      SoftmaxRow(s + r * tk, table.bias.data() + i * tk, table.any[i], tk, w + r * tk);
    }
  });
  return mindtf::kOk;
}

MINDTF_AOT(MindtfMaskedSoftmaxGrad) {
  if (nparam != 4) return mindtf::kBadArity;
  if (!mindtf::IsF32(dtypes[0]) || !mindtf::IsF32(dtypes[1]) || !mindtf::IsF32(dtypes[3]))
    return mindtf::kBadDtype;
  if (std::strcmp(dtypes[2], "bool") != 0) return mindtf::kBadDtype;
  int64_t rows, tq, tk;
  if (!Dims(ndims[0], shapes[0], ndims[2], shapes[2], &rows, &tq, &tk)) return mindtf::kBadShape;
  if (mindtf::Numel(ndims[1], shapes[1]) != rows * tk) return mindtf::kBadShape;
  if (rows == 0 || tk == 0) return mindtf::kOk;
  const float* w = static_cast<const float*>(params[0]);
  const float* dw = static_cast<const float*>(params[1]);
  const bool* m = static_cast<const bool*>(params[2]);
  std::vector<char> any(static_cast<size_t>(tq), 0);  // does query i see any key?
  for (int64_t i = 0; i < tq; ++i)
    for (int64_t j = 0; j < tk; ++j) any[i] = static_cast<char>(any[i] | m[i * tk + j]);
  float* ds = static_cast<float*>(params[3]);
  const int nt = mindtf::ThreadsFor(rows * tk, kGrain);
  mindtf::ParallelFor(rows, nt, [&](int, int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      SoftmaxGradRow(w + r * tk, dw + r * tk, any[r % tq], tk, ds + r * tk);
  });
  return mindtf::kOk;
}
