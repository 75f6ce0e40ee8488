/* Compiled CPU kernels of hrsnn's fused recurrent layers (hrsnn/fused.py), loaded with ctypes by
   hrsnn/_native/__init__.py. Plain C on raw pointers into contiguous tensors, no Python or torch headers; each
   kernel exists for float (suffix _f32) and double (_f64), generated from kernels_body.h. Threads: OpenMP, the
   process's runtime (torch's libgomp once torch is imported), as many as the caller passes.

   Weights in the sparse kernels are CSR of W^T: row i lists the targets j of source neuron i (idx, int32) with the
   values W[j, i] (val); ptr (int64, N + 1) delimits the rows. Arrays of states are (B, N), row-major. */
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#else
static int omp_get_num_threads(void) { return 1; }
static int omp_get_thread_num(void) { return 0; }
#endif
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* Functions marked CONTRACT may fuse a * b + c into one rounding (fused multiply-add, as BLAS does); every other
   function rounds each operation as written. GCC only (elsewhere: no effect). */
#if defined(__GNUC__) && !defined(__clang__)
#define CONTRACT __attribute__((optimize("fp-contract=fast")))
#else
#define CONTRACT
#endif

/* Bit q set where x[q] != 0, for q < len <= 64: AVX-512 compares where the CPU has them, else a vectorised test for
   any nonzero (spike vectors are mostly empty) before the bit-by-bit loop. */
static inline uint64_t nonzero_bits_f32(const float *x, int64_t len) {
#if defined(__AVX512F__)
    if (len == 64) {
        const __m512 z = _mm512_setzero_ps();
        return (uint64_t)_mm512_cmpneq_ps_mask(_mm512_loadu_ps(x), z) |
               (uint64_t)_mm512_cmpneq_ps_mask(_mm512_loadu_ps(x + 16), z) << 16 |
               (uint64_t)_mm512_cmpneq_ps_mask(_mm512_loadu_ps(x + 32), z) << 32 |
               (uint64_t)_mm512_cmpneq_ps_mask(_mm512_loadu_ps(x + 48), z) << 48;
    }
#endif
    int any = 0;
    for (int64_t q = 0; q < len; q++) any |= x[q] != 0;
    uint64_t bits = 0;
    if (any)
        for (int64_t q = 0; q < len; q++) bits |= (uint64_t)(x[q] != 0) << q;
    return bits;
}

static inline uint64_t nonzero_bits_f64(const double *x, int64_t len) {
#if defined(__AVX512F__)
    if (len == 64) {
        const __m512d z = _mm512_setzero_pd();
        uint64_t bits = 0;
        for (int q = 0; q < 8; q++) bits |= (uint64_t)_mm512_cmpneq_pd_mask(_mm512_loadu_pd(x + 8 * q), z) << (8 * q);
        return bits;
    }
#endif
    int any = 0;
    for (int64_t q = 0; q < len; q++) any |= x[q] != 0;
    uint64_t bits = 0;
    if (any)
        for (int64_t q = 0; q < len; q++) bits |= (uint64_t)(x[q] != 0) << q;
    return bits;
}

static inline uint64_t nonzero_bits_u8(const uint8_t *x, int64_t len) {
#if defined(__AVX512BW__)
    if (len == 64) {
        const __m512i v = _mm512_loadu_si512((const void *)x);
        return (uint64_t)_mm512_test_epi8_mask(v, v);
    }
#endif
    uint64_t bits = 0;
    for (int64_t q = 0; q < len; q++) bits |= (uint64_t)(x[q] != 0) << q;
    return bits;
}

static void transpose_bits64(uint64_t *a) { /* bit c of a[q] -> bit q of a[c] (Hacker's Delight, 7-3) */
    uint64_t m = 0x00000000FFFFFFFFull;
    for (int j = 32; j; j >>= 1, m ^= m << j)
        for (int k = 0; k < 64; k = ((k | j) + 1) & ~j) {
            const uint64_t t = ((a[k] >> j) ^ a[k | j]) & m;
            a[k] ^= t << j;
            a[k | j] ^= t;
        }
}

/* row[idx[k]] += v * val[k] for k in [k0, k1), the idx distinct (one source's targets in a CSR row), each entry
   rounded as written (product, then sum): AVX-512 gathers and scatters 16 (float) or 8 (double) entries at a time
   where the CPU has them, a scalar loop for the rest. */
static inline void scatter_add_f32(float *row, const int32_t *idx, const float *val, float v, int64_t k0, int64_t k1) {
    int64_t k = k0;
#if defined(__AVX512F__)
    const __m512 vv = _mm512_set1_ps(v);
    for (; k + 16 <= k1; k += 16) {
        const __m512i j = _mm512_loadu_si512((const void *)(idx + k));
        const __m512 sum = _mm512_add_ps(_mm512_i32gather_ps(j, row, 4), _mm512_mul_ps(vv, _mm512_loadu_ps(val + k)));
        _mm512_i32scatter_ps(row, j, sum, 4);
    }
#endif
    for (; k < k1; k++) row[idx[k]] += v * val[k];
}

static inline void scatter_add_f64(double *row, const int32_t *idx, const double *val, double v, int64_t k0,
                                   int64_t k1) {
    int64_t k = k0;
#if defined(__AVX512F__)
    const __m512d vv = _mm512_set1_pd(v);
    for (; k + 8 <= k1; k += 8) {
        const __m256i j = _mm256_loadu_si256((const __m256i *)(idx + k));
        const __m512d sum = _mm512_add_pd(_mm512_i32gather_pd(j, row, 8), _mm512_mul_pd(vv, _mm512_loadu_pd(val + k)));
        _mm512_i32scatter_pd(row, j, sum, 8);
    }
#endif
    for (; k < k1; k++) row[idx[k]] += v * val[k];
}

/* acc[k] += v * g[idx[k]] for k in [k0, k1), each entry rounded as written (product, then sum): AVX-512 gathers of
   16 (float) or 8 (double) entries at a time where the CPU has them (compilers do not emit gathers for the plain
   loop), a scalar loop for the rest. */
static inline void gather_add_f32(int64_t k0, int64_t k1, float v, const float *restrict g,
                                  const int32_t *restrict idx, float *restrict acc) {
    int64_t k = k0;
#if defined(__AVX512F__)
    const __m512 vv = _mm512_set1_ps(v);
    for (; k + 16 <= k1; k += 16) {
        const __m512 x = _mm512_i32gather_ps(_mm512_loadu_si512((const void *)(idx + k)), g, 4);
        _mm512_storeu_ps(acc + k, _mm512_add_ps(_mm512_loadu_ps(acc + k), _mm512_mul_ps(vv, x)));
    }
#endif
    for (; k < k1; k++) acc[k] += v * g[idx[k]];
}

static inline void gather_add_f64(int64_t k0, int64_t k1, double v, const double *restrict g,
                                  const int32_t *restrict idx, double *restrict acc) {
    int64_t k = k0;
#if defined(__AVX512F__)
    const __m512d vv = _mm512_set1_pd(v);
    for (; k + 8 <= k1; k += 8) {
        const __m512d x = _mm512_i32gather_pd(_mm256_loadu_si256((const __m256i *)(idx + k)), g, 8);
        _mm512_storeu_pd(acc + k, _mm512_add_pd(_mm512_loadu_pd(acc + k), _mm512_mul_pd(vv, x)));
    }
#endif
    for (; k < k1; k++) acc[k] += v * g[idx[k]];
}

#if defined(__AVX512F__)
/* dst[c * ds + r] = src[r * ss + c] (add: +=) for a 16 x 16 block of floats, in registers: rows interleaved in
   pairs (unpack), pairs in pairs (64-bit unpack), then the 128-bit lanes of four registers exchanged (a 4 x 4
   transpose of lanes). Each value is moved, or added once: the same result as the scalar loop. */
static inline void transpose16_f32(const float *src, int64_t ss, float *dst, int64_t ds, int add) {
    __m512 r[16], a[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * ss);
    for (int k = 0; k < 8; k++) {
        a[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        a[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    for (int k = 0; k < 4; k++) { /* r[4 k + c], 128-bit lane l: column 4 l + c of rows 4 k .. 4 k + 3 */
        const __m512d lo = _mm512_castps_pd(a[4 * k]), hi = _mm512_castps_pd(a[4 * k + 1]);
        const __m512d lo2 = _mm512_castps_pd(a[4 * k + 2]), hi2 = _mm512_castps_pd(a[4 * k + 3]);
        r[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(lo, lo2));
        r[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(lo, lo2));
        r[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(hi, hi2));
        r[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(hi, hi2));
    }
    for (int c = 0; c < 4; c++) {
        const __m512 u0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x44), u1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xEE);
        const __m512 v0 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x44);
        const __m512 v1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xEE);
        a[c] = _mm512_shuffle_f32x4(u0, v0, 0x88);
        a[4 + c] = _mm512_shuffle_f32x4(u0, v0, 0xDD);
        a[8 + c] = _mm512_shuffle_f32x4(u1, v1, 0x88);
        a[12 + c] = _mm512_shuffle_f32x4(u1, v1, 0xDD);
    }
    for (int m = 0; m < 16; m++) {
        float *out = dst + m * ds;
        _mm512_storeu_ps(out, add ? _mm512_add_ps(_mm512_loadu_ps(out), a[m]) : a[m]);
    }
}
#define TRANSPOSE16_F32 transpose16_f32
#endif

/* e^x, vectorisable (no calls, no branches): e^x = 2^k e^r with k = round(x / ln 2) and |r| <= ln(2) / 2 (ln 2 split
   in two, Cody and Waite), e^r by its Taylor polynomial (degree 13 in double, 7 in float: truncation below 1e-17
   and 1e-8 relative). Within a few ulp of libm's exp; 0 below the smallest normal result, +inf above the largest
   finite one, NaN for NaN. */
static inline double exp_f64(double x) {
    const double xc = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
    const double k = (xc * 1.4426950408889634 + 0x1.8p52) - 0x1.8p52;
    const double r = (xc - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    const uint64_t bits = (uint64_t)((int64_t)k + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    const double y = p * scale;
    return x < -708.0 ? 0.0 : (x > 709.0 ? (double)INFINITY : (x != x ? x : y));
}

static inline float exp_f32(float x) {
    const float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    const float k = (xc * 1.44269504f + 0x1.8p23f) - 0x1.8p23f;
    const float r = (xc - k * 0.693145751953125f) - k * 1.428606765330187045e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const uint32_t bits = (uint32_t)((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    const float y = p * scale;
    return x < -87.0f ? 0.0f : (x > 88.0f ? INFINITY : (x != x ? x : y));
}

/* Slice t of a sequence operand given as {address of slice 0, bytes between slices, slices} (three int64 values):
   slice t mod slices (a ring of slices where fewer than the steps are kept; 1: the same slice at every step), NULL
   when slices is 0 (no operand). */
static inline void *seq_at(const int64_t *op, int64_t t) {
    return op[2] ? (void *)(intptr_t)(op[0] + t % op[2] * op[1]) : NULL;
}

#define REAL float
#define NAME(x) x##_f32
#define NONZERO_BITS nonzero_bits_f32
#define SCATTER_ADD scatter_add_f32
#define GATHER_ADD gather_add_f32
#define EXP exp_f32
#ifdef TRANSPOSE16_F32
#define TRANSPOSE16 TRANSPOSE16_F32
#endif
#include "kernels_body.h"
#undef TRANSPOSE16
#undef REAL
#undef NAME
#undef NONZERO_BITS
#undef SCATTER_ADD
#undef GATHER_ADD
#undef EXP

#define REAL double
#define NAME(x) x##_f64
#define NONZERO_BITS nonzero_bits_f64
#define SCATTER_ADD scatter_add_f64
#define GATHER_ADD gather_add_f64
#define EXP exp_f64
#include "kernels_body.h"
#undef REAL
#undef NAME
#undef NONZERO_BITS
#undef SCATTER_ADD
#undef GATHER_ADD
#undef EXP

/* Version of the calling convention; the loader refuses a library whose number differs. */
int hrsnn_abi(void) { return 3; }
