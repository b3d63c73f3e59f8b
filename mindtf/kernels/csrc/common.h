// Shared helpers for mindtf's CPU kernels (MindSpore ops.Custom, func_type="aot").
//
// Every kernel is a C function with MindSpore's AOT signature:
//
//   int Name(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
//            void* stream, void* extra)
//
// params[0 .. inputs-1] are the inputs, the rest the outputs (already allocated by MindSpore);
// shapes[i][0 .. ndims[i]-1] is the shape of params[i]. A non-zero return value makes MindSpore
// raise. All tensors are float32 and contiguous (row-major); the Python side checks the dtypes.
#ifndef MINDTF_KERNELS_COMMON_H_
#define MINDTF_KERNELS_COMMON_H_

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

// MindSpore's AOT signature; the CPU kernels use neither the stream nor the extra argument
#define MINDTF_AOT(name)                                                                    \
  extern "C" int name(int nparam, void** params, int* ndims, int64_t** shapes,            \
                      const char** dtypes, [[maybe_unused]] void* stream,                 \
                      [[maybe_unused]] void* extra)

namespace mindtf {

// status codes returned to MindSpore (anything but 0 is an error)
constexpr int kOk = 0;
constexpr int kBadArity = 1;
constexpr int kBadDtype = 2;
constexpr int kBadShape = 3;

inline int64_t Numel(int nd, const int64_t* shape) {
  int64_t n = 1;
  for (int i = 0; i < nd; ++i) n *= shape[i];
  return n;
}

// (rows, width) of a tensor seen as a matrix over its last axis: (..., D) -> (prod(...), D)
inline int64_t Width(int nd, const int64_t* shape) { return nd > 0 ? shape[nd - 1] : 1; }
inline int64_t Rows(int nd, const int64_t* shape) { return nd > 0 ? Numel(nd - 1, shape) : 1; }

inline bool IsF32(const char* dtype) {
  return std::strcmp(dtype, "float32") == 0 || std::strcmp(dtype, "float") == 0;
}

inline bool AllF32(int n, const char** dtypes) {
  for (int i = 0; i < n; ++i)
    if (!IsF32(dtypes[i])) return false;
  return true;
}

// the common prologue: exactly `want` arguments, all float32 (inputs and outputs)
inline int CheckF32Args(int nparam, int want, const char** dtypes) {
  if (nparam != want) return kBadArity;
  return AllF32(nparam, dtypes) ? kOk : kBadDtype;
}

// ---------------------------------------------------------------------------- threads
// A small pool of worker threads that *sleep* between jobs (a condition variable), never spin.
// Why not OpenMP's runtime: libgomp's idle workers busy-wait after each parallel region (its
// default wait policy), and between two of our kernels MindSpore runs its own ops on the same
// cores. Measured on a 2-core machine, the nano GPT training step took 4x longer with OpenMP
// threads than with single-threaded kernels; the wait policy (OMP_WAIT_POLICY) is read once when
// MindSpore loads libgomp, too early for mindtf to set it. The loops still vectorise through
// `#pragma omp simd` (-fopenmp-simd, no runtime).
class Pool {
 public:
  // The process's pool, never destroyed (sleeping workers end with the process). A child made
  // by fork() has none of the parent's worker threads, so it gets a fresh pool (AfterFork).
  static Pool& Get() { return *Slot().load(std::memory_order_acquire); }
  int MaxThreads() const { return max_threads_; }

  // Runs fn(t, count) for t = 0 .. count-1, t = 0 on the calling thread; returns when all are
  // done. A second caller arriving while a job runs (MindSpore may launch kernels from two
  // threads) runs its job alone on its own thread instead of waiting.
  void Run(int count, const std::function<void(int, int)>& fn) {
    std::unique_lock<std::mutex> busy(run_mu_, std::try_to_lock);
    if (count <= 1 || !busy.owns_lock()) {
      fn(0, 1);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      while (static_cast<int>(workers_.size()) < count - 1) {
        const int id = static_cast<int>(workers_.size()) + 1;
        workers_.emplace_back([this, id] { Work(id); });
      }
      job_ = &fn;
      count_ = count;
      pending_ = count - 1;
      ++generation_;
    }
    work_cv_.notify_all();
    fn(0, count);
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  Pool() : max_threads_(DetectThreads()) {}

  static std::atomic<Pool*>& Slot() {
    static std::atomic<Pool*> slot{Fresh()};
    return slot;
  }
  static Pool* Fresh() {
    static const int registered = pthread_atfork(nullptr, nullptr, &Pool::AfterFork);
    (void)registered;
    return new Pool();
  }
  // in the child of a fork(), which has one thread: abandon the parent's pool
  static void AfterFork() { Slot().store(new Pool(), std::memory_order_release); }

  // MINDTF_KERNEL_THREADS, else OMP_NUM_THREADS, else the CPUs this process may run on
  static int DetectThreads() {
    for (const char* name : {"MINDTF_KERNEL_THREADS", "OMP_NUM_THREADS"}) {
      const char* v = std::getenv(name);
      if (v != nullptr && std::atoi(v) > 0) return std::atoi(v);
    }
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
      return CPU_COUNT(&set);
#endif
    const unsigned hw = std::thread::hardware_concurrency();
    return hw > 0 ? static_cast<int>(hw) : 1;
  }

  void Work(int id) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      work_cv_.wait(lk, [&] { return generation_ != seen; });
      seen = generation_;
      if (id >= count_ || job_ == nullptr) continue;
      const std::function<void(int, int)>* job = job_;
      const int count = count_;
      lk.unlock();
      (*job)(id, count);
      lk.lock();
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  const int max_threads_;
  std::mutex run_mu_;  // one job at a time
  std::mutex mu_;      // guards everything below
  std::condition_variable work_cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* job_ = nullptr;
  int count_ = 0, pending_ = 0;
  uint64_t generation_ = 0;
};

// Threads for `work` elements: one per `grain` elements, at most the pool's maximum. Small
// tensors stay on the calling thread: waking a sleeping worker costs tens of microseconds.
inline int ThreadsFor(int64_t work, int64_t grain) {
  const int64_t most = Pool::Get().MaxThreads();
  int64_t t = work / grain;
  if (t > most) t = most;
  return t < 1 ? 1 : static_cast<int>(t);
}

// [begin, end) of `n` items for thread `t` of `count` (contiguous static split)
inline void Split(int64_t n, int t, int count, int64_t* begin, int64_t* end) {
  const int64_t base = n / count, extra = n % count;
  *begin = t * base + (t < extra ? t : extra);
  *end = *begin + base + (t < extra ? 1 : 0);
}

// fn(t, begin, end) on `threads` threads over contiguous blocks of [0, n)
inline void ParallelFor(int64_t n, int threads,
                        const std::function<void(int, int64_t, int64_t)>& fn) {
  if (threads > n) threads = n < 1 ? 1 : static_cast<int>(n);
  Pool::Get().Run(threads, [&](int t, int count) {
    int64_t begin, end;
    Split(n, t, count, &begin, &end);
    fn(t, begin, end);
  });
}

// exp(x) for float32 in a form the compiler vectorises (no libm call): x = n ln2 + r with
// |r| <= ln2/2, exp(r) by a degree-6 polynomial (relative error about 2e-7), 2^n put into the
// exponent bits. Below -87.3 (where float32 exp leaves the normal range) the result is 0.
inline float ExpF(float x) {
  const float lo = -87.33654f, hi = 88.72283f;
  const float xc = x < lo ? lo : (x > hi ? hi : x);
  // round(x / ln2) with the 1.5 * 2^23 trick (round to nearest, no libm)
  const float shifter = 12582912.0f;
  const float n = (xc * 1.44269504088896341f + shifter) - shifter;
  // r = x - n ln2, ln2 split in a high part exact in float and a low correction
  const float r = (xc - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return x < lo ? 0.0f : p * scale;
}

// logistic sigmoid 1 / (1 + exp(-x)), vectorisable
inline float SigmoidF(float x) { return 1.0f / (1.0f + ExpF(-x)); }

}  // namespace mindtf

#endif  // MINDTF_KERNELS_COMMON_H_
