// The networks' reflection-padded 3x3 convolutions on the CPU as Winograd F(2x2, 3x3)
// (layer_setup.h): 4 instead of 9 multiply-adds per output pixel and channel pair, which on a CPU
// without native low precision is worth more than the transforms cost once the layer has 64 or
// more channels (benchmarks/RESULTS.md). Each task takes a run of blocks of tiles; per block:
//   1. input transform: the 4x4 windows of the block's tiles, read through reflected indices,
//   become
//      V[16][tiles][in] (B^T d B per channel);
//   2. 16 GEMMs M[k] = V[k] (tiles x in) * U[k] (in x out), U = G g G^T prepared once;
//   3. output transform: each tile's 2x2 outputs A^T m A per channel, plus bias, ReLU, stored into
//      the channels_last output (the rows and columns past an odd edge are dropped).
// The blocks are sized so that V and M stay in the core's cache between the three steps.
#include <ATen/Parallel.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/from_blob.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../layer_setup.h"

namespace adain {
namespace {

// Tiles per block: V (16 x tiles x in) and M (16 x tiles x out) of a block together about 2 MiB
// (measured against 1 and 4 MiB on a 2-core AVX2 machine: taller GEMMs run faster, until the
// buffers leave the cache), 8 to 256 tiles.
int64_t tiles_per_block(int64_t cin, int64_t cout) {
  constexpr int64_t kFloatsPerBlock = (2 << 20) / 4;
  return std::clamp<int64_t>(kFloatsPerBlock / (16 * (cin + cout)), 8, 256);
}

// Channels per step of the transforms: a fixed-length inner loop the compiler turns into
// vectors (8 float32 lanes with AVX2), the remainder of the channels done one by one.
constexpr int64_t kLanes = 8;
constexpr int64_t kSkew = 16;  // one 64-byte cache line

// B^T d B per channel: d[4][4] point at the window's pixels (each `c` floats; a zero run stands
// for the pixels past an odd edge), v gets the 16 transformed values of each channel at stride
// `stride` (v[k * stride + ch]).
template <int64_t L>
__attribute__((always_inline)) inline void input_transform_step(const float* const d[4][4],
                                                                int64_t ch, float* __restrict v,
                                                                int64_t stride) {
  float t[4][4][L];
  for (int j = 0; j < 4; ++j) {  // rows: B^T d
    for (int64_t l = 0; l < L; ++l) {
      const float d0 = d[0][j][ch + l], d1 = d[1][j][ch + l];
      const float d2 = d[2][j][ch + l], d3 = d[3][j][ch + l];
      t[0][j][l] = d0 - d2;
      t[1][j][l] = d1 + d2;
      t[2][j][l] = d2 - d1;
      t[3][j][l] = d1 - d3;
    }
  }
  for (int i = 0; i < 4; ++i) {  // columns: (B^T d) B
    for (int64_t l = 0; l < L; ++l) {
      v[(4 * i + 0) * stride + ch + l] = t[i][0][l] - t[i][2][l];
      v[(4 * i + 1) * stride + ch + l] = t[i][1][l] + t[i][2][l];
      v[(4 * i + 2) * stride + ch + l] = t[i][2][l] - t[i][1][l];
      v[(4 * i + 3) * stride + ch + l] = t[i][1][l] - t[i][3][l];
    }
  }
}

__attribute__((target_clones("avx2", "default"))) void input_transform(const float* const d[4][4],
                                                                       int64_t c, float* v,
                                                                       int64_t stride) {
  int64_t ch = 0;
  for (; ch + kLanes <= c; ch += kLanes) input_transform_step<kLanes>(d, ch, v, stride);
  for (; ch < c; ++ch) input_transform_step<1>(d, ch, v, stride);
}

// A^T m A plus bias (then ReLU) per channel: m holds the 16 GEMM results of each output channel
// at stride `stride`; out[a][b] points at output pixel (a, b) of the tile, null past an edge.
template <int64_t L>
__attribute__((always_inline)) inline void output_transform_step(const float* __restrict m,
                                                                 int64_t stride,
                                                                 const float* __restrict bias,
                                                                 bool relu, int64_t ch,
                                                                 float* const out[2][2]) {
  float t[2][4][L], y[2][2][L];
  for (int j = 0; j < 4; ++j) {  // A^T m
    for (int64_t l = 0; l < L; ++l) {
      const float m0 = m[(0 + j) * stride + ch + l], m1 = m[(4 + j) * stride + ch + l];
      const float m2 = m[(8 + j) * stride + ch + l], m3 = m[(12 + j) * stride + ch + l];
      t[0][j][l] = m0 + m1 + m2;
      t[1][j][l] = m1 - m2 - m3;
    }
  }
  for (int a = 0; a < 2; ++a) {  // (A^T m) A
    for (int64_t l = 0; l < L; ++l) {
      y[a][0][l] = t[a][0][l] + t[a][1][l] + t[a][2][l] + bias[ch + l];
      y[a][1][l] = t[a][1][l] - t[a][2][l] - t[a][3][l] + bias[ch + l];
    }
  }
  for (int a = 0; a < 2; ++a) {
    for (int b = 0; b < 2; ++b) {
      if (out[a][b] == nullptr) continue;
      float* __restrict o = out[a][b] + ch;
      for (int64_t l = 0; l < L; ++l) {
        // not max(y, 0), which would turn NaN into 0: the plain network's ReLU keeps it
        o[l] = relu && y[a][b][l] < 0.f ? 0.f : y[a][b][l];
      }
    }
  }
}

__attribute__((target_clones("avx2", "default"))) void output_transform(const float* m,
                                                                        int64_t stride,
                                                                        const float* bias,
                                                                        bool relu, int64_t c,
                                                                        float* const out[2][2]) {
  int64_t ch = 0;
  for (; ch + kLanes <= c; ch += kLanes)
    output_transform_step<kLanes>(m, stride, bias, relu, ch, out);
  for (; ch < c; ++ch) output_transform_step<1>(m, stride, bias, relu, ch, out);
}

at::Tensor winograd_conv3x3_reflect_cpu(const at::Tensor& x, const at::Tensor& weights,
                                        const at::Tensor& bias, bool relu) {
  WinogradCall call = setup_winograd_conv3x3_reflect(x, weights, bias);
  const int64_t cin = call.cin, cout = call.cout, h = call.h, w = call.w;
  const int64_t tiles_h = (h + 1) / 2, tiles_w = (w + 1) / 2;
  const int64_t tiles = call.n * tiles_h * tiles_w;
  if (tiles == 0) return call.out;
  const int64_t block = tiles_per_block(cin, cout);
  const int64_t blocks = (tiles + block - 1) / block;
  const float* src = call.x.const_data_ptr<float>();
  const float* b = call.bias.const_data_ptr<float>();
  float* dst = call.out.mutable_data_ptr<float>();

  // At least two tasks, so that with several threads the GEMMs always run inside a parallel
  // region, where BLAS computes single-threaded: a lone block outside one would get a threaded
  // GEMM that sums in another order, and the results would depend on the thread count (dataset
  // stylization promises the same bytes from one process with many threads as from many with
  // one). The extra task has nothing to do.
  at::parallel_for(0, std::max<int64_t>(blocks, 2), 1, [&](int64_t first, int64_t last) {
    last = std::min(last, blocks);
    if (first >= last) return;
    // The 16 positions' matrices lie `skew` floats more than a block apart: with power-of-two
    // strides the 16 rows a transform touches per channel would share one set of the L1 cache.
    const int64_t v_stride = block * cin + kSkew, m_stride = block * cout + kSkew;
    std::vector<float> v(16 * v_stride), m(16 * m_stride), zeros(cin, 0.f);
    for (int64_t blk = first; blk < last; ++blk) {
      const int64_t t0 = blk * block, count = std::min(block, tiles - t0);
      for (int64_t i = 0; i < count; ++i) {
        const int64_t t = t0 + i, tx = t % tiles_w, ty = (t / tiles_w) % tiles_h;
        const int64_t img = t / (tiles_w * tiles_h);
        const float* d[4][4];
        for (int r = 0; r < 4; ++r) {
          // window row r is input row 2ty + r - 1, reflected at -1 and h; row h + 1 (the last
          // tile of an odd height) feeds only the dropped output row h: zeros. Columns alike.
          const int64_t row = 2 * ty + r - 1;
          for (int s = 0; s < 4; ++s) {
            const int64_t col = 2 * tx + s - 1;
            d[r][s] =
                row > h || col > w
                    ? zeros.data()
                    : src + ((img * h + reflect_index(row, h)) * w + reflect_index(col, w)) * cin;
          }
        }
        input_transform(d, cin, v.data() + i * cin, v_stride);
      }
      // M[k] (count x out) = V[k] (count x in) * U[k] (in x out) for the 16 positions: one
      // batched GEMM over views of the block's buffers (single-threaded inside this task)
      const auto options = at::TensorOptions().dtype(at::kFloat);
      at::Tensor products =
          at::from_blob(m.data(), {16, count, cout}, {m_stride, cout, 1}, options);
      at::bmm_out(products, at::from_blob(v.data(), {16, count, cin}, {v_stride, cin, 1}, options),
                  call.weights);
      for (int64_t i = 0; i < count; ++i) {
        const int64_t t = t0 + i, tx = t % tiles_w, ty = (t / tiles_w) % tiles_h;
        const int64_t img = t / (tiles_w * tiles_h);
        float* out[2][2];
        for (int a = 0; a < 2; ++a) {
          for (int c = 0; c < 2; ++c) {
            const int64_t row = 2 * ty + a, col = 2 * tx + c;
            out[a][c] = row < h && col < w ? dst + ((img * h + row) * w + col) * cout : nullptr;
          }
        }
        output_transform(m.data() + i * cout, m_stride, b, relu, cout, out);
      }
    }
  });
  return call.out;
}

}  // namespace

TORCH_LIBRARY_IMPL(adain_cuda, CPU, m) {
  m.impl("winograd_conv3x3_reflect", &winograd_conv3x3_reflect_cpu);
}

}  // namespace adain
