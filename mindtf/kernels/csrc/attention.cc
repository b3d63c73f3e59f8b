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

// vectors of 16 floats are returned by value from inline helpers: without AVX-512, GCC notes
// that such a function's ABI would differ (it is never called across a library boundary)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

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

// per query row i (rows padded to a multiple of kW, the padding sees nothing): how many keys to
// compute (last visible key + 1; 0 = sees none), per key j the first row that sees a key >= j
// (the backward's column pass starts there), and the additive bias (0 visible, -inf masked)
struct MaskInfo {
  std::vector<int64_t> end, first;
  std::vector<float> bias;
  MaskInfo(const bool* m, int64_t t, int64_t tp)
      : end(static_cast<size_t>(tp), 0), first(static_cast<size_t>(tp), t),
        bias(static_cast<size_t>(t * t)) {
    const float inf = std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < t; ++i)
      for (int64_t j = 0; j < t; ++j) {
        const bool keep = m[i * t + j];
        bias[i * t + j] = keep ? 0.0f : -inf;
        if (keep) end[i] = j + 1;
      }
    for (int64_t i = t - 1; i >= 0; --i)
      for (int64_t j = 0; j < end[i]; ++j) first[j] = i;
  }
};

// ------------------------------------------------------------------ register-blocked products
// Vectors of kW floats (GCC/Clang vector extensions: AVX-512, 2 x AVX2 or 4 x NEON registers).
// Every scratch row is padded with zeros to a multiple of kW, so the loops have no remainders;
// each product keeps 4 independent accumulators in registers (rows of a 4-row block), which is
// what makes these small products fast: accumulating into memory stalls on store-to-load
// forwarding at every step (measured 4x slower).
constexpr int64_t kW = 16;
typedef float Vec __attribute__((vector_size(kW * sizeof(float))));

inline Vec Load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void Store(float* p, const Vec& v) { std::memcpy(p, &v, sizeof(v)); }
inline int64_t RoundUp(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// out[r][0 .. kW*nch) = sum_{c < depth} a[r][c] * bt[c][.]   (r < 4; rows of a: lda apart)
void Abt4(const float* a, int64_t lda, const float* bt, int64_t ldb, int64_t depth,
          int64_t nch, float* out, int64_t ldo) {
  for (int64_t jc = 0; jc < nch; ++jc) {
    Vec s0{}, s1{}, s2{}, s3{};
    const float* b = bt + jc * kW;
    for (int64_t c = 0; c < depth; ++c) {
      const Vec bv = Load(b + c * ldb);
      s0 += a[c] * bv;
      s1 += a[lda + c] * bv;
      s2 += a[2 * lda + c] * bv;
      s3 += a[3 * lda + c] * bv;
    }
    Store(out + jc * kW, s0);
    Store(out + ldo + jc * kW, s1);
    Store(out + 2 * ldo + jc * kW, s2);
    Store(out + 3 * ldo + jc * kW, s3);
  }
}

// out[r][.] = sum_{j < n} p[r][j] * v[j][.]   (r < 4; v rows padded to kW * dch)
void Pv4(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t n, int64_t dch,
         float* out, int64_t ldo) {
  for (int64_t dc = 0; dc < dch; ++dc) {
    Vec o0{}, o1{}, o2{}, o3{};
    for (int64_t j = 0; j < n; ++j) {
      const Vec vv = Load(v + j * ldv + dc * kW);
      o0 += p[j] * vv;
      o1 += p[ldp + j] * vv;
      o2 += p[2 * ldp + j] * vv;
      o3 += p[3 * ldp + j] * vv;
    }
    Store(out + dc * kW, o0);
    Store(out + ldo + dc * kW, o1);
    Store(out + 2 * ldo + dc * kW, o2);
    Store(out + 3 * ldo + dc * kW, o3);
  }
}

// out[r][.] = sum_{i0 <= i < i1} p[i][r] * y[i][.]   (columns r < 4 of p: a transposed product)
void Ptv4(const float* p, int64_t ldp, const float* y, int64_t ldy, int64_t i0, int64_t i1,
          int64_t dch, float* out, int64_t ldo) {
  for (int64_t dc = 0; dc < dch; ++dc) {
    Vec o0{}, o1{}, o2{}, o3{};
    for (int64_t i = i0; i < i1; ++i) {
      const Vec yv = Load(y + i * ldy + dc * kW);
      const float* pr = p + i * ldp;
      o0 += pr[0] * yv;
      o1 += pr[1] * yv;
      o2 += pr[2] * yv;
      o3 += pr[3] * yv;
    }
    Store(out + dc * kW, o0);
    Store(out + ldo + dc * kW, o1);
    Store(out + 2 * ldo + dc * kW, o2);
    Store(out + 3 * ldo + dc * kW, o3);
  }
}

// ------------------------------------------------------------------ one (batch, head) pair
// element (b, t, part, h, :) of qkv, and (b, t, h, :) of y / dy
inline int64_t QkvAt(const Dims& s, int64_t b, int64_t t, int part, int64_t h) {
  return (((b * s.t + t) * 3 + part) * s.h + h) * s.d;
}
inline int64_t HeadAt(const Dims& s, int64_t b, int64_t t, int64_t h) {
  return ((b * s.t + t) * s.h + h) * s.d;
}

// zero-padded per-thread buffers: (tp, dp) row-major "rows", (dp, tp) "transposed", (tp, tp)
struct Scratch {
  int64_t tp, dp;
  std::vector<float> q, k, kt, v, vt, dy, w, ds, dq, dk, dv;
  Scratch(int64_t t, int64_t d, bool backward) : tp(RoundUp(t, kW)), dp(RoundUp(d, kW)) {
    const size_t rows = static_cast<size_t>(tp * dp), square = static_cast<size_t>(tp * tp);
    q.assign(rows, 0.0f);
    v.assign(rows, 0.0f);
    w.assign(square, 0.0f);
    dq.assign(rows, 0.0f);  // forward: the output rows
    if (backward) {
      k.assign(rows, 0.0f);
      vt.assign(rows, 0.0f);
      dy.assign(rows, 0.0f);
      ds.assign(square, 0.0f);
      dk.assign(rows, 0.0f);
      dv.assign(rows, 0.0f);
    } else {
      kt.assign(rows, 0.0f);
    }
  }
};

// softmax of row i of the scores over its keys j < n (masked keys get exp(-inf) = 0)
void SoftmaxRow(float* sc, const float* bias, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j) {
    sc[j] += bias[j];
    mx = sc[j] > mx ? sc[j] : mx;
  }
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) {
    const float e = mindtf::ExpF(sc[j] - mx);
    sc[j] = e;
    sum += e;
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) sc[j] *= inv;
}

inline int64_t MaxEnd(const MaskInfo& m, int64_t i0) {
  int64_t n = 0;
  for (int64_t r = 0; r < 4; ++r) n = m.end[i0 + r] > n ? m.end[i0 + r] : n;
  return n;
}

void ForwardHead(const float* qkv, const Dims& s, const MaskInfo& mask, int64_t b, int64_t h,
                 float scale, Scratch* w, float* y, float* p) {
  const int64_t t = s.t, d = s.d, tp = w->tp, dp = w->dp;
  for (int64_t i = 0; i < t; ++i) {
    const float* q = qkv + QkvAt(s, b, i, 0, h);
    const float* k = qkv + QkvAt(s, b, i, 1, h);
    const float* v = qkv + QkvAt(s, b, i, 2, h);
    for (int64_t c = 0; c < d; ++c) {
      w->q[i * dp + c] = q[c] * scale;
      w->kt[c * tp + i] = k[c];
      w->v[i * dp + c] = v[c];
    }
  }
  float* sc = w->w.data();
  for (int64_t i0 = 0; i0 < t; i0 += 4) {
    const int64_t nmax = MaxEnd(mask, i0);
    if (nmax > 0) {
      Abt4(w->q.data() + i0 * dp, dp, w->kt.data(), tp, d, RoundUp(nmax, kW) / kW,
           sc + i0 * tp, tp);  // scores (4, nmax)
      for (int64_t i = i0; i < i0 + 4; ++i) {
        const int64_t n = mask.end[i];
        if (n > 0) SoftmaxRow(sc + i * tp, mask.bias.data() + (i < t ? i * t : 0), n);
        std::fill(sc + i * tp + n, sc + (i + 1) * tp, 0.0f);
      }
      Pv4(sc + i0 * tp, tp, w->v.data(), dp, nmax, dp / kW, w->dq.data() + i0 * dp, dp);
    } else {
      std::fill(sc + i0 * tp, sc + (i0 + 4) * tp, 0.0f);
      std::fill(w->dq.begin() + i0 * dp, w->dq.begin() + (i0 + 4) * dp, 0.0f);
    }
  }
  float* ph = p + (b * s.h + h) * t * t;
  for (int64_t i = 0; i < t; ++i) {
    std::memcpy(y + HeadAt(s, b, i, h), w->dq.data() + i * dp, sizeof(float) * d);
    std::memcpy(ph + i * t, sc + i * tp, sizeof(float) * t);
  }
}

void BackwardHead(const float* dy, const float* qkv, const float* p, const Dims& s,
                  const MaskInfo& mask, int64_t b, int64_t h, float scale, Scratch* w,
                  float* dqkv) {
  const int64_t t = s.t, d = s.d, tp = w->tp, dp = w->dp, dch = dp / kW;
  const float* ph = p + (b * s.h + h) * t * t;
  float* pw = w->w.data();
  float* ds = w->ds.data();
  for (int64_t i = 0; i < t; ++i) {
    const float* q = qkv + QkvAt(s, b, i, 0, h);
    const float* k = qkv + QkvAt(s, b, i, 1, h);
    const float* v = qkv + QkvAt(s, b, i, 2, h);
    const float* g = dy + HeadAt(s, b, i, h);
    for (int64_t c = 0; c < d; ++c) {
      w->q[i * dp + c] = q[c] * scale;
      w->k[i * dp + c] = k[c];
      w->vt[c * tp + i] = v[c];
      w->dy[i * dp + c] = g[c];
    }
    std::memcpy(pw + i * tp, ph + i * t, sizeof(float) * t);
  }
  // row pass: dP = dY V^T, dS = P (dP - rowsum(dP P)), dQs = dS K
  for (int64_t i0 = 0; i0 < t; i0 += 4) {
    const int64_t nmax = MaxEnd(mask, i0);
    if (nmax == 0) {
      std::fill(ds + i0 * tp, ds + (i0 + 4) * tp, 0.0f);
      std::fill(w->dq.begin() + i0 * dp, w->dq.begin() + (i0 + 4) * dp, 0.0f);
      continue;
    }
    Abt4(w->dy.data() + i0 * dp, dp, w->vt.data(), tp, d, RoundUp(nmax, kW) / kW,
         ds + i0 * tp, tp);
    for (int64_t i = i0; i < i0 + 4; ++i) {
      const int64_t n = mask.end[i];
      float* r = ds + i * tp;
      const float* pr = pw + i * tp;
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int64_t j = 0; j < n; ++j) dot += r[j] * pr[j];
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) r[j] = pr[j] * (r[j] - dot);
      std::fill(r + n, r + tp, 0.0f);
    }
    Pv4(ds + i0 * tp, tp, w->k.data(), dp, nmax, dch, w->dq.data() + i0 * dp, dp);
  }
  // column pass: dK = dS^T Qs, dV = P^T dY, from the first row that sees each key block
  for (int64_t j0 = 0; j0 < t; j0 += 4) {
    int64_t i0 = t;
    for (int64_t r = 0; r < 4; ++r) i0 = mask.first[j0 + r] < i0 ? mask.first[j0 + r] : i0;
    Ptv4(ds + j0, tp, w->q.data(), dp, i0, t, dch, w->dk.data() + j0 * dp, dp);
    Ptv4(pw + j0, tp, w->dy.data(), dp, i0, t, dch, w->dv.data() + j0 * dp, dp);
  }
  for (int64_t i = 0; i < t; ++i) {
    float* gq = dqkv + QkvAt(s, b, i, 0, h);
    float* gk = dqkv + QkvAt(s, b, i, 1, h);
    float* gv = dqkv + QkvAt(s, b, i, 2, h);
    for (int64_t c = 0; c < d; ++c) {
      gq[c] = w->dq[i * dp + c] * scale;
      gk[c] = w->dk[i * dp + c];
      gv[c] = w->dv[i * dp + c];
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
  const MaskInfo mask(static_cast<const bool*>(params[1]), s.t, RoundUp(s.t, kW));
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
  const MaskInfo mask(static_cast<const bool*>(params[3]), s.t, RoundUp(s.t, kW));
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
