// Fused multi-head self-attention on the fused q|k|v projection (mindtf.kernels.fused_attention).
//
//   forward   qkv (B, T, 3, H, D) float32, mask (T, T) bool (true = may attend)
//               -> y (B, T, H, D), p (B, H, T, T)
//             for each (b, h):  S = (Q / sqrt(D)) K^T   (masked keys: -inf)
//                               P = softmax(S) over the keys,  Y = P V
//             a query that sees no key gets P = 0 and Y = 0 (as the guarded built-in path)
//   backward  dy (B, T, H, D), qkv, p, mask  ->  dqkv (B, T, 3, H, D)
//             dV = P^T dY,  dP = dY V^T,  dS = P * (dP - rowsum(dP * P)),
//             dQ = dS K / sqrt(D),  dK = dS^T (Q / sqrt(D))
//
// Why fused: the built-in path is split + 3 head transposes + 2 batched MatMuls + softmax +
// 1 merge transpose forward and about twice that backward, each a kernel launch and a pass over
// memory; here it is one launch each way, and the head layout (B, T, H, D) is read in place (a
// reshape of the c_attn output, no copy). Only the keys up to the last visible one of each query
// row are computed, so a causal mask costs half a dense product.
//
// The (b, h) pairs are split over the pool's threads (common.h); each thread copies its head's
// Q, K, V into contiguous scratch rows so the inner loops run over contiguous memory.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common.h"

namespace {

constexpr int64_t kGrain = 16384;  // multiply-adds per thread before another thread helps

// shape (B, T, 3, H, D) of qkv and (T, T) of the mask
struct Dims {
  int64_t b, t, h, d;
};

bool ReadDims(int nq, const int64_t* q, int nm, const int64_t* m, Dims* out) {
  if (nq != 5 || q[2] != 3 || nm != 2 || m[0] != q[1] || m[1] != q[1]) return false;
  *out = Dims{q[0], q[1], q[3], q[4]};
  return true;
}

// per query row: how many keys to compute (last visible key + 1; 0 = sees none), and the
// additive bias (0 visible, -inf masked) of the (T, T) mask
struct MaskInfo {
  std::vector<int64_t> end;
  std::vector<float> bias;
  MaskInfo(const bool* m, int64_t t) : end(static_cast<size_t>(t), 0),
                                       bias(static_cast<size_t>(t * t)) {
    const float inf = std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < t; ++i)
      for (int64_t j = 0; j < t; ++j) {
        const bool keep = m[i * t + j];
        bias[i * t + j] = keep ? 0.0f : -inf;
        if (keep) end[i] = j + 1;
      }
  }
};

// element (b, t, part, h, :) of qkv, and (b, t, h, :) of y / dy
inline const float* QkvAt(const float* qkv, const Dims& s, int64_t b, int64_t t, int part,
                          int64_t h) {
  return qkv + (((b * s.t + t) * 3 + part) * s.h + h) * s.d;
}
inline int64_t HeadAt(const Dims& s, int64_t b, int64_t t, int64_t h) {
  return ((b * s.t + t) * s.h + h) * s.d;
}

// s[0..n) = sum_c a[c] * bt[c * ld + 0..n)  (a row times a transposed matrix, contiguous in j)
inline void RowTimesT(const float* a, const float* bt, int64_t ld, int64_t depth, int64_t n,
                      float* s) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) s[j] = 0.0f;
  for (int64_t c = 0; c < depth; ++c) {
    const float av = a[c];
    const float* row = bt + c * ld;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) s[j] += av * row[j];
  }
}

// y[0..d) += w * x[0..d)
inline void Axpy(float w, const float* x, int64_t d, float* y) {
#pragma omp simd
  for (int64_t c = 0; c < d; ++c) y[c] += w * x[c];
}

struct Scratch {
  std::vector<float> q, kt, v, k, vt, dy, dq, dk, dv, row;
  explicit Scratch(int64_t t, int64_t d, bool backward)
      : q(t * d), kt(d * t), v(t * d), row(t) {
    if (backward) {
      k.resize(t * d);
      vt.resize(d * t);
      dy.resize(t * d);
      dq.resize(t * d);
      dk.resize(t * d);
      dv.resize(t * d);
    }
  }
};

void ForwardHead(const float* qkv, const Dims& s, const MaskInfo& mask, int64_t b, int64_t h,
                 float scale, Scratch* w, float* y, float* p) {
  const int64_t t = s.t, d = s.d;
  for (int64_t i = 0; i < t; ++i) {
    const float* q = QkvAt(qkv, s, b, i, 0, h);
    const float* k = QkvAt(qkv, s, b, i, 1, h);
    const float* v = QkvAt(qkv, s, b, i, 2, h);
    for (int64_t c = 0; c < d; ++c) {
      w->q[i * d + c] = q[c] * scale;
      w->kt[c * t + i] = k[c];
      w->v[i * d + c] = v[c];
    }
  }
  float* prow = p + (b * s.h + h) * t * t;
  for (int64_t i = 0; i < t; ++i, prow += t) {
    const int64_t n = mask.end[i];
    float* out = y + HeadAt(s, b, i, h);
    for (int64_t c = 0; c < d; ++c) out[c] = 0.0f;
    for (int64_t j = n; j < t; ++j) prow[j] = 0.0f;
    if (n == 0) continue;  // sees no key: zero weights, zero output
    float* sc = prow;  // the scores are computed in place of the weights
    RowTimesT(w->q.data() + i * d, w->kt.data(), t, d, n, sc);
    const float* bias = mask.bias.data() + i * t;
    float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
    for (int64_t j = 0; j < n; ++j) {
      sc[j] += bias[j];
      mx = sc[j] > mx ? sc[j] : mx;
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; ++j) {
      const float e = mindtf::ExpF(sc[j] - mx);  // masked keys: exp(-inf) = 0
      sc[j] = e;
      sum += e;
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) sc[j] *= inv;
    for (int64_t j = 0; j < n; ++j)
      if (sc[j] != 0.0f) Axpy(sc[j], w->v.data() + j * d, d, out);
  }
}

void BackwardHead(const float* dy, const float* qkv, const float* p, const Dims& s,
                  const MaskInfo& mask, int64_t b, int64_t h, float scale, Scratch* w,
                  float* dqkv) {
  const int64_t t = s.t, d = s.d;
  for (int64_t i = 0; i < t; ++i) {
    const float* q = QkvAt(qkv, s, b, i, 0, h);
    const float* k = QkvAt(qkv, s, b, i, 1, h);
    const float* v = QkvAt(qkv, s, b, i, 2, h);
    const float* g = dy + HeadAt(s, b, i, h);
    for (int64_t c = 0; c < d; ++c) {
      w->q[i * d + c] = q[c] * scale;
      w->k[i * d + c] = k[c];
      w->vt[c * t + i] = v[c];
      w->dy[i * d + c] = g[c];
    }
  }
  std::fill(w->dq.begin(), w->dq.end(), 0.0f);
  std::fill(w->dk.begin(), w->dk.end(), 0.0f);
  std::fill(w->dv.begin(), w->dv.end(), 0.0f);
  const float* prow = p + (b * s.h + h) * t * t;
  float* ds = w->row.data();
  for (int64_t i = 0; i < t; ++i, prow += t) {
    const int64_t n = mask.end[i];
    if (n == 0) continue;
    const float* gi = w->dy.data() + i * d;
    // dV[j] += P[i, j] dY[i];  dP[i, :] = dY[i] V^T
    for (int64_t j = 0; j < n; ++j)
      if (prow[j] != 0.0f) Axpy(prow[j], gi, d, w->dv.data() + j * d);
    RowTimesT(gi, w->vt.data(), t, d, n, ds);
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < n; ++j) dot += ds[j] * prow[j];
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) ds[j] = prow[j] * (ds[j] - dot);
    // dQs[i] = dS[i, :] K;  dK[j] += dS[i, j] Qs[i]
    float* dqi = w->dq.data() + i * d;
    const float* qi = w->q.data() + i * d;
    for (int64_t j = 0; j < n; ++j) {
      if (ds[j] == 0.0f) continue;
      Axpy(ds[j], w->k.data() + j * d, d, dqi);
      Axpy(ds[j], qi, d, w->dk.data() + j * d);
    }
  }
  for (int64_t i = 0; i < t; ++i) {
    float* gq = dqkv + (QkvAt(qkv, s, b, i, 0, h) - qkv);
    float* gk = dqkv + (QkvAt(qkv, s, b, i, 1, h) - qkv);
    float* gv = dqkv + (QkvAt(qkv, s, b, i, 2, h) - qkv);
    for (int64_t c = 0; c < d; ++c) {
      gq[c] = w->dq[i * d + c] * scale;
      gk[c] = w->dk[i * d + c];
      gv[c] = w->dv[i * d + c];
    }
  }
}

}  // namespace

MINDTF_AOT(MindtfFusedAttention) {
  if (nparam != 4) return mindtf::kBadArity;
  if (!mindtf::IsF32(dtypes[0]) || !mindtf::IsF32(dtypes[2]) || !mindtf::IsF32(dtypes[3]))
    return mindtf::kBadDtype;
  if (std::strcmp(dtypes[1], "bool") != 0) return mindtf::kBadDtype;
  Dims s;
  if (!ReadDims(ndims[0], shapes[0], ndims[1], shapes[1], &s)) return mindtf::kBadShape;
  if (s.b * s.h * s.t * s.d == 0) return mindtf::kOk;
  const float* qkv = static_cast<const float*>(params[0]);
  const MaskInfo mask(static_cast<const bool*>(params[1]), s.t);
  float* y = static_cast<float*>(params[2]);
  float* p = static_cast<float*>(params[3]);
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.d));
  const int64_t heads = s.b * s.h;
  const int nt = mindtf::ThreadsFor(heads * s.t * s.t * s.d, kGrain);
  mindtf::ParallelFor(heads, nt, [&](int, int64_t begin, int64_t end) {
    Scratch w(s.t, s.d, false);
    for (int64_t bh = begin; bh < end; ++bh)
      ForwardHead(qkv, s, mask, bh / s.h, bh % s.h, scale, &w, y, p);
  });
  return mindtf::kOk;
}

MINDTF_AOT(MindtfFusedAttentionGrad) {
  if (nparam != 5) return mindtf::kBadArity;
  for (int i : {0, 1, 2, 4})
    if (!mindtf::IsF32(dtypes[i])) return mindtf::kBadDtype;
  if (std::strcmp(dtypes[3], "bool") != 0) return mindtf::kBadDtype;
  Dims s;
  if (!ReadDims(ndims[1], shapes[1], ndims[3], shapes[3], &s)) return mindtf::kBadShape;
  if (mindtf::Numel(ndims[0], shapes[0]) != s.b * s.t * s.h * s.d ||
      mindtf::Numel(ndims[2], shapes[2]) != s.b * s.h * s.t * s.t)
    return mindtf::kBadShape;
  if (s.b * s.h * s.t * s.d == 0) return mindtf::kOk;
  const float* dy = static_cast<const float*>(params[0]);
  const float* qkv = static_cast<const float*>(params[1]);
  const float* p = static_cast<const float*>(params[2]);
  const MaskInfo mask(static_cast<const bool*>(params[3]), s.t);
  float* dqkv = static_cast<float*>(params[4]);
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.d));
  const int64_t heads = s.b * s.h;
  const int nt = mindtf::ThreadsFor(2 * heads * s.t * s.t * s.d, kGrain);
  mindtf::ParallelFor(heads, nt, [&](int, int64_t begin, int64_t end) {
    Scratch w(s.t, s.d, true);
    for (int64_t bh = begin; bh < end; ++bh)
      BackwardHead(dy, qkv, p, s, mask, bh / s.h, bh % s.h, scale, &w, dqkv);
  });
  return mindtf::kOk;
}
