// cuda_on_host.cpp runs one generated float32 CUDA matmul kernel on the host: each block's
// 256 threads are std::threads meeting at a std::barrier for __syncthreads, __shared__ is a
// static, and blocks run one after another. TestTileKernelsOnHost compiles it with g++,
// -DKERNEL="file.cu" -DFN=kernel_name, and runs it with M N K gridx gridy colb gridz; it checks
// every output of the second of two launches against a double-precision product and prints "ok".
#include <thread>
#include <mutex>
#include <barrier>
#include <vector>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <random>
struct alignas(16) float4 { float x, y, z, w; };
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
struct dim3 { int x, y, z; };
thread_local dim3 threadIdx;
dim3 blockIdx, gridDim;
unsigned atomicAdd(unsigned* p, unsigned v) { static std::mutex mu; std::lock_guard<std::mutex> l(mu); unsigned o = *p; *p += v; return o; }
#define __threadfence()
std::barrier<>* bar;
#define __syncthreads() bar->arrive_and_wait()
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(x)
#define __restrict__
#define __align__(n) __attribute__((aligned(n)))
#include KERNEL
int main(int argc, char** argv) {
  int M = atoi(argv[1]), N = atoi(argv[2]), K = atoi(argv[3]), gx = atoi(argv[4]), gy = atoi(argv[5]), colb = atoi(argv[6]), gz = argc > 7 ? atoi(argv[7]) : 1;
  std::mt19937 g(1); std::normal_distribution<float> nd;
  std::vector<float> A(M * K), B(K * N), C(M * N, NAN);
  for (auto& v : A) v = nd(g);
  for (auto& v : B) v = nd(g);
  gridDim = {gx, gy, gz};
  for (int rep = 0; rep < 2; rep++) // twice: a split kernel must leave its tile counters at zero
  for (int bz = 0; bz < gz; bz++) for (int by = 0; by < gy; by++) for (int bx = 0; bx < gx; bx++) {
    if (bx == 0 && by == 0 && bz == 0) std::fill(C.begin(), C.end(), NAN);
    blockIdx = {bx, by, bz};
    std::barrier<> b(256); bar = &b;
    std::vector<std::thread> ts;
    for (int t = 0; t < 256; t++) ts.emplace_back([&, t] { threadIdx = {t, 0, 0}; FN(C.data(), A.data(), B.data()); });
    for (auto& t : ts) t.join();
  }
  double worst = 0;
  for (int i = 0; i < M; i++) for (int j = 0; j < N; j++) {
    double w = 0;
    for (int l = 0; l < K; l++) w += (double)A[i * K + l] * (colb ? B[j * K + l] : B[l * N + j]);
    double e = std::fabs(C[i * N + j] - w);
    if (!(e <= 1e-3 * (1 + std::fabs(w)))) { printf("C[%d,%d] = %g want %g\n", i, j, C[i * N + j], w); return 1; }
    worst = std::max(worst, e);
  }
  printf("ok worst %g\n", worst);
}
