/* Type-generic bodies of kernels.c, included once per REAL (float, double) with NAME(x) adding the suffix. */

/* Vectors of 64 bytes (GCC/Clang vector extension; lowered to narrower registers where the CPU has none), loadable
   from any address aligned to REAL, allowed to alias arrays of REAL. */
typedef REAL NAME(vec) __attribute__((vector_size(64), aligned(sizeof(REAL)), may_alias));
#define LANES ((int64_t)(64 / sizeof(REAL)))

/* A block of 8 vectors held in registers a0 .. a7: loaded from p, v * w[0 .. 7] added, stored back to p (used where
   a list of rows adds into one block of an output row). The function around decides the rounding (CONTRACT). */
#ifndef BLOCK8_LOAD
#define BLOCK8_LOAD(p) NAME(vec) a0 = (p)[0], a1 = (p)[1], a2 = (p)[2], a3 = (p)[3], a4 = (p)[4], a5 = (p)[5], \
                                 a6 = (p)[6], a7 = (p)[7]
#define BLOCK8_ADD(v, w)                                                                                            \
    do {                                                                                                            \
        a0 += (v) * (w)[0];                                                                                         \
        a1 += (v) * (w)[1];                                                                                         \
        a2 += (v) * (w)[2];                                                                                         \
        a3 += (v) * (w)[3];                                                                                         \
        a4 += (v) * (w)[4];                                                                                         \
        a5 += (v) * (w)[5];                                                                                         \
        a6 += (v) * (w)[6];                                                                                         \
        a7 += (v) * (w)[7];                                                                                         \
    } while (0)
#define BLOCK8_STORE(p)                                                                                             \
    do {                                                                                                            \
        (p)[0] = a0;                                                                                                \
        (p)[1] = a1;                                                                                                \
        (p)[2] = a2;                                                                                                \
        (p)[3] = a3;                                                                                                \
        (p)[4] = a4;                                                                                                \
        (p)[5] = a5;                                                                                                \
        (p)[6] = a6;                                                                                                \
        (p)[7] = a7;                                                                                                \
    } while (0)
#endif

/* row += sum over the nonzero s[i] of s[i] W[:, i]: CSR of W^T (ptr, idx, val) or, when ptr is NULL, dense W^T
   rows (wt, N x N). The cost grows with the number of nonzero s[i]. Dense rows: the nonzero i are listed in ev
   (scratch of N ints) first, then the row is built in blocks of 8 vectors held in registers while every listed row
   of W^T adds its block (no load and store of the row per spike); each entry sums in increasing i either way. */
static inline void NAME(add_events)(int64_t n, const REAL *s, const int64_t *ptr, const int32_t *idx,
                                    const REAL *val, const REAL *wt, REAL *restrict row, int32_t *restrict ev) {
    int64_t m = 0;
    for (int64_t i0 = 0; i0 < n; i0 += 64)
        for (uint64_t bits = NONZERO_BITS(s + i0, n - i0 < 64 ? n - i0 : 64); bits; bits &= bits - 1)
            ev[m++] = (int32_t)(i0 + __builtin_ctzll(bits));
    if (ptr) {
        for (int64_t e = 0; e < m; e++) {
            const int64_t i = ev[e];
            const REAL v = s[i];
            SCATTER_ADD(row, idx, val, v, ptr[i], ptr[i + 1]);
        }
        return;
    }
    int64_t j0 = 0;
    for (; j0 + 8 * LANES <= n; j0 += 8 * LANES) {
        NAME(vec) *out = (NAME(vec) *)(row + j0);
        BLOCK8_LOAD(out);
        for (int64_t e = 0; e < m; e++)
            BLOCK8_ADD(s[ev[e]], (const NAME(vec) *)(wt + (int64_t)ev[e] * n + j0));
        BLOCK8_STORE(out);
    }
    for (int64_t j = j0; j < n; j++) {
        REAL sum = row[j];
        for (int64_t e = 0; e < m; e++) sum += s[ev[e]] * wt[(int64_t)ev[e] * n + j];
        row[j] = sum;
    }
}

/* out = c + s W^T for (B, N) arrays, spike-driven (add_events per sample); out may be c. Returns 0, or -1 when out
   of memory. */
int NAME(event_matmul)(int64_t batch, int64_t n, const REAL *c, const REAL *s, const int64_t *ptr,
                       const int32_t *idx, const REAL *val, const REAL *wt, REAL *out, int threads) {
    int failed = 0;
#pragma omp parallel num_threads(threads) if (threads > 1) reduction(| : failed)
    {
        int32_t *ev = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
        failed = ev == NULL;
#pragma omp for schedule(static)
        for (int64_t b = 0; b < batch; b++) {
            if (!ev) continue;
            if (out != c) memcpy(out + b * n, c + b * n, (size_t)n * sizeof(REAL));
            NAME(add_events)(n, s + b * n, ptr, idx, val, wt, out + b * n, ev);
        }
        free(ev);
    }
    return failed ? -1 : 0;
}

/* The neuron update of one sample (see alif_forward_step); returns its number of spikes. Separate functions with
   restrict pointers, so that the loops vectorise. */
static inline int32_t NAME(alif_update)(int64_t n, const REAL *restrict cur, const REAL *restrict sp,
                                        const REAL *restrict up, const REAL *restrict ep, REAL *restrict u,
                                        REAL *restrict eta, REAL *restrict s, const REAL *restrict alpha,
                                        const REAL *restrict rho, const REAL *restrict scale, REAL b0, REAL beta,
                                        REAL dt) {
    int32_t fired = 0;
    for (int64_t j = 0; j < n; j++) {
        const REAL e = rho[j] * ep[j] + (1 - rho[j]) * sp[j];
        const REAL theta = b0 + beta * e;
        const REAL v = alpha[j] * up[j] + scale[j] * cur[j] - dt * theta * sp[j];
        const int32_t fire = v > theta;
        eta[j] = e;
        u[j] = v;
        s[j] = (REAL)fire;
        fired += fire;
    }
    return fired;
}

static inline int32_t NAME(lif_update)(int64_t n, const REAL *restrict cur, const REAL *restrict sp,
                                       const REAL *restrict up, REAL *restrict u, REAL *restrict s,
                                       const REAL *restrict alpha, const REAL *restrict scale, REAL b0, REAL reset) {
    int32_t fired = 0;
    for (int64_t j = 0; j < n; j++) {
        const REAL v = alpha[j] * up[j] + scale[j] * cur[j] - reset * sp[j];
        const int32_t fire = v > b0;
        u[j] = v;
        s[j] = (REAL)fire;
        fired += fire;
    }
    return fired;
}

/* cur = c + bias for one sample's row of n currents. */
static inline void NAME(add_bias)(int64_t n, const REAL *c, const REAL *bias, REAL *cur) {
    for (int64_t j = 0; j < n; j++) cur[j] = c[j] + bias[j];
}

/* One ALIF step for B samples (parallel over samples). mode 0: the current I_t is given in cur; otherwise
   cur = c + W s_prev, or (c + bias) + W s_prev when bias (N values) is not NULL, spike-driven (mode 1: CSR of W^T;
   mode 2: dense W^T rows). Then, per neuron,
   eta = rho eta_prev + (1 - rho) s_prev and theta = b0 + beta eta (adaptive; else theta = b0 and eta is not
   touched), u = alpha u_prev + scale I - dt theta s_prev, s = [u > theta]. Returns the number of spikes written,
   or -1 when out of memory. */
static int64_t NAME(alif_forward_step)(int64_t batch, int64_t n, int mode, const REAL *c, const REAL *bias,
                                const REAL *s_prev, REAL *cur,
                                const int64_t *ptr, const int32_t *idx, const REAL *val, const REAL *wt,
                                const REAL *u_prev, REAL *u, const REAL *eta_prev, REAL *eta, REAL *s,
                                const REAL *alpha, const REAL *rho, const REAL *scale, double b0, double beta,
                                double dt, int adaptive, int threads) {
    int64_t count = 0;
    int failed = 0;
#pragma omp parallel num_threads(threads) if (threads > 1) reduction(+ : count) reduction(| : failed)
    {
        int32_t *ev = mode != 0 ? malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t)) : NULL;
        failed = mode != 0 && ev == NULL;
#pragma omp for schedule(static)
        for (int64_t b = 0; b < batch; b++) {
            const int64_t o = b * n;
            if (failed) continue;
            if (mode != 0) {
                if (bias)
                    NAME(add_bias)(n, c + o, bias, cur + o);
                else if (cur + o != c + o)
                    memcpy(cur + o, c + o, (size_t)n * sizeof(REAL));
                NAME(add_events)(n, s_prev + o, mode == 1 ? ptr : NULL, idx, val, wt, cur + o, ev);
            }
            if (adaptive)
                count += NAME(alif_update)(n, cur + o, s_prev + o, u_prev + o, eta_prev + o, u + o, eta + o, s + o,
                                           alpha, rho, scale, (REAL)b0, (REAL)beta, (REAL)dt);
            else
                count += NAME(lif_update)(n, cur + o, s_prev + o, u_prev + o, u + o, s + o, alpha, scale, (REAL)b0,
                                          (REAL)(b0 * dt));
        }
        free(ev);
    }
    return failed ? -1 : count;
}

/* dst[c * ds + r] = src[r * ss + c], or += when add, for rows r0 <= r < r1 and columns 0 <= c < cols of src: in
   16 x 16 blocks held in registers where there is a TRANSPOSE16 (float, AVX-512), the rest in blocks of 64
   columns. */
static void NAME(transpose)(int64_t r0, int64_t r1, int64_t cols, const REAL *src, int64_t ss, REAL *restrict dst,
                            int64_t ds, int add) {
    int64_t rb = r0, cb = 0; /* rows r0 .. rb - 1 by columns 0 .. cb - 1 go by blocks */
#ifdef TRANSPOSE16
    rb = r0 + (r1 - r0) / 16 * 16;
    cb = cols / 16 * 16;
    for (int64_t c = 0; c < cb; c += 16)
        for (int64_t r = r0; r < rb; r += 16) TRANSPOSE16(src + r * ss + c, ss, dst + c * ds + r, ds, add);
#endif
    for (int64_t c0 = 0; c0 < cols; c0 += 64) {
        const int64_t c1 = c0 + 64 < cols ? c0 + 64 : cols;
        for (int64_t r = r0; r < r1; r++)
            for (int64_t c = (r < rb && c0 < cb) ? cb : c0; c < c1; c++) {
                const REAL v = src[r * ss + c];
                dst[c * ds + r] = add ? dst[c * ds + r] + v : v;
            }
    }
}

/* acc[:] += sum_k val[k] gt[idx[k], :] over k in [k0, k1), rows of `batch` values (gt: the rows of one tile, idx:
   offsets in the tile): one output row's share of one tile in the product with W^T in CSR. Blocks of 4 vectors of
   samples are held in registers (two chains of accumulators, so that the adds' latency overlaps); leftover samples
   take a scalar loop. */
static inline CONTRACT void NAME(spmm_row)(int64_t batch, const REAL *gt, int64_t k0, int64_t k1,
                                           const uint8_t *idx, const REAL *val, REAL *restrict acc) {
    const int64_t full = batch - batch % (4 * LANES);
    for (int64_t b0 = 0; b0 < full; b0 += 4 * LANES) {
        NAME(vec) a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
        int64_t k = k0;
        for (; k + 1 < k1; k += 2) {
            const REAL w = val[k], v = val[k + 1];
            const NAME(vec) *row = (const NAME(vec) *)(gt + (int64_t)idx[k] * batch + b0);
            const NAME(vec) *nxt = (const NAME(vec) *)(gt + (int64_t)idx[k + 1] * batch + b0);
            a0 += w * row[0];
            a1 += w * row[1];
            a2 += w * row[2];
            a3 += w * row[3];
            c0 += v * nxt[0];
            c1 += v * nxt[1];
            c2 += v * nxt[2];
            c3 += v * nxt[3];
        }
        if (k < k1) {
            const REAL w = val[k];
            const NAME(vec) *row = (const NAME(vec) *)(gt + (int64_t)idx[k] * batch + b0);
            a0 += w * row[0];
            a1 += w * row[1];
            a2 += w * row[2];
            a3 += w * row[3];
        }
        NAME(vec) *out = (NAME(vec) *)(acc + b0);
        out[0] += a0 + c0;
        out[1] += a1 + c1;
        out[2] += a2 + c2;
        out[3] += a3 + c3;
    }
    for (int64_t b = full; b < batch; b++) {
        REAL sum = 0;
        for (int64_t k = k0; k < k1; k++) sum += val[k] * gt[(int64_t)idx[k] * batch + b];
        acc[b] += sum;
    }
}

/* Columns i0 .. i1 - 1 of out (B, N) += g W, with W^T in tiled CSR (csr_tile) and gt = g^T (N, B) complete; acc_t:
   scratch (N, B), rows i0 .. i1 - 1 used. Tile by tile, so that each tile's rows of gt stay in cache while every
   output row takes its entries from that tile; then the rows of acc_t are added, transposed, into out. One thread's
   share of the product: threads with disjoint ranges of i need no synchronisation. */
static CONTRACT void NAME(spmm_tiled)(int64_t batch, int64_t n, int64_t i0, int64_t i1, int64_t tiles,
                                      int64_t tile, const REAL *gt, const int64_t *tptr, const uint8_t *tidx,
                                      const REAL *tval, REAL *acc_t, REAL *out) {
    if (i1 <= i0) return;
    memset(acc_t + i0 * batch, 0, (size_t)((i1 - i0) * batch) * sizeof(REAL));
    for (int64_t t = 0; t < tiles; t++) {
        const int64_t *p = tptr + t * n;
        const REAL *rows = gt + t * tile * batch;
        for (int64_t i = i0; i < i1; i++) NAME(spmm_row)(batch, rows, p[i], p[i + 1], tidx, tval, acc_t + i * batch);
    }
    NAME(transpose)(i0, i1, batch, acc_t, batch, out, n, 1);
}

/* out (B, N) += g W with W^T in tiled CSR (csr_tile); gt and acc_t: scratch of B * N values each. */
void NAME(csr_matmul_t)(int64_t batch, int64_t n, const REAL *g, int64_t tiles, int64_t tile, const int64_t *tptr,
                        const uint8_t *tidx, const REAL *tval, REAL *gt, REAL *acc_t, REAL *out, int threads) {
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        const int parts = omp_get_num_threads(), part = omp_get_thread_num();
        NAME(transpose)(batch * part / parts, batch * (part + 1) / parts, n, g, n, gt, batch, 0);
#pragma omp barrier
        NAME(spmm_tiled)(batch, n, n * part / parts, n * (part + 1) / parts, tiles, tile, gt, tptr, tidx, tval, acc_t,
                         out);
    }
}

/* The CSR (ptr, idx, val) reordered by tiles of `tile` <= 256 consecutive column indices: tptr (tiles * N + 1)
   delimits, for tile t and row i, the entries tptr[t N + i] .. tptr[t N + i + 1] of tidx (column offsets in the
   tile, one byte each) and tval (column order kept); order, unless NULL, gets the CSR position of each tiled entry
   (tval[a] = val[order[a]]). */
void NAME(csr_tile)(int64_t n, int64_t tile, const int64_t *ptr, const int32_t *idx, const REAL *val,
                    int64_t *tptr, uint8_t *tidx, REAL *tval, int64_t *order) {
    const int64_t tiles = (n + tile - 1) / tile;
    memset(tptr, 0, (size_t)(tiles * n + 1) * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = ptr[i]; k < ptr[i + 1]; k++) tptr[(idx[k] / tile) * n + i + 1]++;
    for (int64_t q = 0; q < tiles * n; q++) tptr[q + 1] += tptr[q];
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = ptr[i]; k < ptr[i + 1]; k++) {
            const int64_t slot = (idx[k] / tile) * n + i;
            const int64_t at = tptr[slot]++;
            tidx[at] = (uint8_t)(idx[k] % tile);
            tval[at] = val[k];
            if (order) order[at] = k;
        }
    for (int64_t q = tiles * n; q > 0; q--) tptr[q] = tptr[q - 1];
    tptr[0] = 0;
}

/* The surrogate derivative psi(v) at v = u - theta (theta = b0 + beta eta when adaptive, else b0) for one sample,
   from the constants c of hrsnn/fused.py (_native_surrogate): kind 1, multi-Gaussian
   c0 e^{c1 v^2} - c2 (e^{c3 v^2 + c4 v} + e^{c3 v^2 - c4 v}) (its side lobes 2 c2 e^{c3 v^2} cosh(c4 v));
   2, Gaussian c0 e^{c1 v^2}; 3, triangle c0 max(0, 1 - |v| / c1); 4, SLAYER exponential c0 e^{-c1 |v|};
   5, fast sigmoid c0 / (1 + c1 |v|)^2; 6, arctan c0 / (1 + (c1 v)^2). Fused multiply-adds allowed (CONTRACT):
   1.2x on the backward step's element-wise pass (N = 4096, B = 64), values within rounding of the separate ones. */
static CONTRACT void NAME(surrogate_row)(int kind, const double *c, int64_t n, const REAL *restrict u,
                                         const REAL *restrict eta, REAL b0, REAL beta, int adaptive,
                                         REAL *restrict psi) {
    const REAL c0 = (REAL)c[0], c1 = (REAL)c[1], c2 = (REAL)c[2], c3 = (REAL)c[3], c4 = (REAL)c[4];
    if (adaptive)
        for (int64_t j = 0; j < n; j++) psi[j] = u[j] - (b0 + beta * eta[j]);
    else
        for (int64_t j = 0; j < n; j++) psi[j] = u[j] - b0;
    switch (kind) {
    case 1:
        for (int64_t j = 0; j < n; j++) {
            const REAL v = psi[j], v2 = v * v;
            psi[j] = c0 * EXP(c1 * v2) - c2 * (EXP(c3 * v2 + c4 * v) + EXP(c3 * v2 - c4 * v));
        }
        break;
    case 2:
        for (int64_t j = 0; j < n; j++) psi[j] = c0 * EXP(c1 * psi[j] * psi[j]);
        break;
    case 3:
        for (int64_t j = 0; j < n; j++) {
            const REAL y = 1 - (psi[j] < 0 ? -psi[j] : psi[j]) / c1;
            psi[j] = c0 * (y > 0 ? y : 0);
        }
        break;
    case 4:
        for (int64_t j = 0; j < n; j++) psi[j] = c0 * EXP(-c1 * (psi[j] < 0 ? -psi[j] : psi[j]));
        break;
    case 5:
        for (int64_t j = 0; j < n; j++) {
            const REAL y = 1 / (1 + c1 * (psi[j] < 0 ? -psi[j] : psi[j]));
            psi[j] = c0 * (y * y);
        }
        break;
    default:
        for (int64_t j = 0; j < n; j++) {
            const REAL x = c1 * psi[j];
            psi[j] = c0 / (1 + x * x);
        }
        break;
    }
}

/* The per-entry backward update of one sample (see alif_backward_step), restrict pointers so that it vectorises;
   g_s, g_u, g_eta point to zeros where there is no external gradient. */
static inline void NAME(alif_backward_row)(int64_t n, const REAL *restrict psi, const REAL *restrict g_s,
                                           const REAL *restrict g_u, const REAL *restrict g_eta,
                                           const REAL *restrict s_prev, const REAL *restrict eta_prev,
                                           const REAL *restrict eta, const REAL *restrict u_prev,
                                           const REAL *restrict cur, REAL *restrict u_bar, REAL *restrict eta_bar,
                                           REAL *restrict s_bar, REAL *restrict acc_alpha, REAL *restrict acc_rho,
                                           REAL *restrict acc_bias, REAL *restrict i_bar,
                                           const REAL *restrict alpha, const REAL *restrict rho,
                                           const REAL *restrict scale, REAL b0, REAL beta, REAL dt, REAL r_m) {
    for (int64_t j = 0; j < n; j++) {
        const REAL pp = (s_bar[j] + g_s[j]) * psi[j];
        const REAL ub = u_bar[j] + pp + g_u[j];
        const REAL eb = eta_bar[j] + g_eta[j] - beta * pp - beta * dt * ub * s_prev[j];
        s_bar[j] = (1 - rho[j]) * eb - dt * ub * (b0 + beta * eta[j]);
        acc_rho[j] += eb * (eta_prev[j] - s_prev[j]);
        eta_bar[j] = eb * rho[j];
        acc_alpha[j] += ub * (u_prev[j] - r_m * cur[j]);
        i_bar[j] = scale[j] * ub;
        acc_bias[j] += scale[j] * ub;
        u_bar[j] = alpha[j] * ub;
    }
}

static inline void NAME(lif_backward_row)(int64_t n, const REAL *restrict psi, const REAL *restrict g_s,
                                          const REAL *restrict g_u, const REAL *restrict u_prev,
                                          const REAL *restrict cur, REAL *restrict u_bar, REAL *restrict s_bar,
                                          REAL *restrict acc_alpha, REAL *restrict acc_bias, REAL *restrict i_bar,
                                          const REAL *restrict alpha, const REAL *restrict scale, REAL reset,
                                          REAL r_m) {
    for (int64_t j = 0; j < n; j++) {
        const REAL ub = u_bar[j] + (s_bar[j] + g_s[j]) * psi[j] + g_u[j];
        s_bar[j] = reset * ub;
        acc_alpha[j] += ub * (u_prev[j] - r_m * cur[j]);
        i_bar[j] = scale[j] * ub;
        acc_bias[j] += scale[j] * ub;
        u_bar[j] = alpha[j] * ub;
    }
}

/* One backward step of the ALIF kernel (hrsnn/fused.py, docstring of the module; step t + 1 there). The surrogate
   derivative is psi when `surrogate` is 0, else computed here (surrogate_row, constants sg) from u (u_t) and eta.
   Per entry:
   pre = s_bar + g_s, u_bar += pre psi + g_u; adaptive: eta_bar += g_eta - beta pre psi - beta dt u_bar s_prev,
   s_bar = (1 - rho) eta_bar - dt u_bar theta with theta = b0 + beta eta, acc_rho += eta_bar (eta_prev - s_prev),
   eta_bar *= rho; LIF: s_bar = -b0 dt u_bar; then acc_alpha += u_bar (u_prev - r_m cur), i_bar = scale u_bar,
   u_bar *= alpha; acc_bias += i_bar (the gradient of a bias added to every step's current). acc_alpha, acc_rho
   and acc_bias hold one row of N per group of samples (groups x N; group q: samples
   B q / groups .. B (q + 1) / groups - 1), so that they stay in cache where per-sample accumulators would stream
   B x N values per step; the caller sums the rows. Threads take whole groups, so every sum runs in the same order
   whatever the thread count. With a tiled CSR of W^T (tptr not
   NULL; csr_tile) it then adds i_bar W to s_bar (gt, acc_t: scratch of B * N values each). g_s, g_u, g_eta may be
   NULL (no external gradient). Returns 0, or -1 when out of memory. */
static int NAME(alif_backward_step)(int64_t batch, int64_t n, int adaptive, int surrogate, const double *sg,
                                    const REAL *u, const REAL *psi, const REAL *g_s, const REAL *g_u,
                                    const REAL *g_eta, const REAL *s_prev, const REAL *eta_prev, const REAL *eta,
                                    const REAL *u_prev, const REAL *cur, REAL *u_bar, REAL *eta_bar, REAL *s_bar,
                                    REAL *acc_alpha, REAL *acc_rho, REAL *acc_bias, REAL *i_bar, const REAL *alpha,
                                    const REAL *rho, const REAL *scale, double b0, double beta, double dt,
                                    double r_m, int64_t tiles, int64_t tile, const int64_t *tptr,
                                    const uint8_t *tidx, const REAL *tval, REAL *gt, REAL *acc_t, int64_t groups,
                                    int threads) {
    const int parts = threads > 1 ? threads : 1;
    REAL *zeros = calloc((size_t)(n > 0 ? n : 1) * (size_t)(1 + (surrogate ? parts : 0)), sizeof(REAL));
    if (!zeros) return -1;
#pragma omp parallel num_threads(parts) if (parts > 1)
    {
        const int nth = omp_get_num_threads(), me = omp_get_thread_num();
        const int64_t q0 = groups * me / nth, q1 = groups * (me + 1) / nth;
        const int64_t first = batch * q0 / groups, last = batch * q1 / groups;
        REAL *psi_row = zeros + n * (1 + me);
        for (int64_t b = first, q = q0; b < last; b++) {
            while (b >= batch * (q + 1) / groups) q++;
            const int64_t o = b * n;
            const REAL *gs = g_s ? g_s + o : zeros, *gu = g_u ? g_u + o : zeros, *ps = psi_row;
            if (surrogate)
                NAME(surrogate_row)(surrogate, sg, n, u + o, eta + o, (REAL)b0, (REAL)beta, adaptive, psi_row);
            else
                ps = psi + o;
            if (adaptive)
                NAME(alif_backward_row)(n, ps, gs, gu, g_eta ? g_eta + o : zeros, s_prev + o, eta_prev + o, eta + o,
                                        u_prev + o, cur + o, u_bar + o, eta_bar + o, s_bar + o, acc_alpha + q * n,
                                        acc_rho + q * n, acc_bias + q * n, i_bar + o, alpha, rho, scale, (REAL)b0,
                                        (REAL)beta, (REAL)dt, (REAL)r_m);
            else
                NAME(lif_backward_row)(n, ps, gs, gu, u_prev + o, cur + o, u_bar + o, s_bar + o, acc_alpha + q * n,
                                       acc_bias + q * n, i_bar + o, alpha, scale, (REAL)(-b0 * dt), (REAL)r_m);
        }
        if (tptr) { /* one barrier: the transposed gradient rows of every thread are needed by all */
            NAME(transpose)(first, last, n, i_bar, n, gt, batch, 0);
#pragma omp barrier
            NAME(spmm_tiled)(batch, n, n * me / nth, n * (me + 1) / nth, tiles, tile, gt, tptr, tidx, tval, acc_t,
                             s_bar);
        }
    }
    free(zeros);
    return 0;
}

/* The weight gradient on the synapses only, from the nonzero s[r, i] (rows r = (t, b) of the (R, N) arrays g and
   s): out[j, i] = sum_r g[r, j] s[r, i] for every synapse i -> j of the CSR of W^T, 0 elsewhere (out (N, N) is
   written whole). First the list of nonzeros of every row of s (one pass over s, keeping each row's bits); then
   each thread sums, row after row, the entries of its range of sources (one copy of the nnz values, no races, the
   same order whatever the thread count); finally out is written row by row from the synapse list by target
   (row_ptr, cols, pos of csr_transpose). Returns 0, or -1 when out of memory. */
int NAME(csr_weight_grad)(int64_t rows, int64_t n, const REAL *g, const REAL *s, const int64_t *ptr,
                          const int32_t *idx, const int64_t *row_ptr, const int32_t *cols, const int64_t *pos,
                          REAL *out, int threads) {
    const int64_t words = (n + 63) / 64; /* each row's nonzero bits (one bit per entry of s), from one pass over s */
    int64_t *ev_ptr = malloc((size_t)(rows + 1) * sizeof(int64_t));
    uint64_t *masks = malloc((size_t)(rows * words > 0 ? rows * words : 1) * sizeof(uint64_t));
    REAL *acc = calloc((size_t)(ptr[n] > 0 ? ptr[n] : 1), sizeof(REAL));
    int32_t *ev_idx = NULL;
    int status = -1;
    if (!ev_ptr || !masks || !acc) goto done;
    ev_ptr[0] = 0;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t r = 0; r < rows; r++) {
        int64_t count = 0;
        for (int64_t w = 0; w < words; w++) {
            const uint64_t bits = NONZERO_BITS(s + r * n + 64 * w, n - 64 * w < 64 ? n - 64 * w : 64);
            masks[r * words + w] = bits;
            count += __builtin_popcountll(bits);
        }
        ev_ptr[r + 1] = count;
    }
    for (int64_t r = 0; r < rows; r++) ev_ptr[r + 1] += ev_ptr[r];
    ev_idx = malloc((size_t)(ev_ptr[rows] > 0 ? ev_ptr[rows] : 1) * sizeof(int32_t));
    if (!ev_idx) goto done;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            int64_t e = ev_ptr[r];
            for (int64_t w = 0; w < words; w++)
                for (uint64_t bits = masks[r * words + w]; bits; bits &= bits - 1)
                    ev_idx[e++] = (int32_t)(64 * w + __builtin_ctzll(bits));
        }
        const int parts = omp_get_num_threads(), part = omp_get_thread_num();
        const int64_t first = n * part / parts, last = n * (part + 1) / parts;
        for (int64_t r = 0; r < rows; r++) {
            const REAL *g_r = g + r * n, *s_r = s + r * n;
            for (int64_t e = ev_ptr[r]; e < ev_ptr[r + 1]; e++) {
                const int64_t i = ev_idx[e];
                if (i < first || i >= last) continue;
                GATHER_ADD(ptr[i], ptr[i + 1], s_r[i], g_r, idx, acc);
            }
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t j = 0; j < n; j++) {
            REAL *row = out + j * n;
            memset(row, 0, (size_t)n * sizeof(REAL));
            for (int64_t e = row_ptr[j]; e < row_ptr[j + 1]; e++) row[cols[e]] = acc[pos[e]];
        }
    }
    status = 0;
done:
    free(ev_ptr);
    free(masks);
    free(ev_idx);
    free(acc);
    return status;
}

/* CSR of W^T (ptr: N + 1, idx, val: one entry per synapse) from W (N, N) and its synapse pattern (N, N, one byte per
   entry, row j = target; NULL: the nonzero entries of W), entries of each row in increasing target order; also the
   synapses by target (row_ptr: N + 1, cols: sources, pos: where each sits in idx/val). The synapses of each row
   of W are listed first (threads split the rows), then sorted by source (counting sort). idx, val, cols and pos
   hold as many entries as the pattern has nonzeros. */
void NAME(csr_transpose)(int64_t n, const uint8_t *pattern, const REAL *w, int64_t *ptr, int32_t *idx, REAL *val,
                         int64_t *row_ptr, int32_t *cols, int64_t *pos, int threads) {
    row_ptr[0] = 0;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t j = 0; j < n; j++) {
        int64_t count = 0;
        for (int64_t i0 = 0; i0 < n; i0 += 64) {
            const int64_t len = n - i0 < 64 ? n - i0 : 64;
            count += __builtin_popcountll(pattern ? nonzero_bits_u8(pattern + j * n + i0, len)
                                                  : NONZERO_BITS(w + j * n + i0, len));
        }
        row_ptr[j + 1] = count;
    }
    for (int64_t j = 0; j < n; j++) row_ptr[j + 1] += row_ptr[j];
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t j = 0; j < n; j++) {
        int64_t e = row_ptr[j];
        for (int64_t i0 = 0; i0 < n; i0 += 64) {
            const int64_t len = n - i0 < 64 ? n - i0 : 64;
            uint64_t bits = pattern ? nonzero_bits_u8(pattern + j * n + i0, len) : NONZERO_BITS(w + j * n + i0, len);
            for (; bits; bits &= bits - 1) cols[e++] = (int32_t)(i0 + __builtin_ctzll(bits));
        }
    }
    memset(ptr, 0, (size_t)(n + 1) * sizeof(int64_t));
    for (int64_t e = 0; e < row_ptr[n]; e++) ptr[cols[e] + 1]++;
    for (int64_t i = 0; i < n; i++) ptr[i + 1] += ptr[i];
    for (int64_t j = 0; j < n; j++) /* ptr[i] runs through the slots of source i, then is shifted back */
        for (int64_t e = row_ptr[j]; e < row_ptr[j + 1]; e++) {
            const int64_t at = ptr[cols[e]]++;
            idx[at] = (int32_t)j;
            val[at] = w[j * n + cols[e]];
            pos[e] = at;
        }
    for (int64_t i = n; i > 0; i--) ptr[i] = ptr[i - 1];
    ptr[0] = 0;
}

/* out (R, N) = b + x W^T over the nonzero entries of x (R, K): per row, the bias (b: N values, or zeros when NULL)
   plus, for each nonzero x[r, i] in increasing i, x[r, i] times row i of wt = W^T (K, N). Parallel over rows. */
void NAME(event_linear)(int64_t rows, int64_t k, int64_t n, const REAL *x, const REAL *wt, const REAL *b, REAL *out,
                        int threads) {
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t r = 0; r < rows; r++) {
        REAL *restrict row = out + r * n;
        const REAL *xr = x + r * k;
        if (b)
            memcpy(row, b, (size_t)n * sizeof(REAL));
        else
            memset(row, 0, (size_t)n * sizeof(REAL));
        for (int64_t i0 = 0; i0 < k; i0 += 64)
            for (uint64_t bits = NONZERO_BITS(xr + i0, k - i0 < 64 ? k - i0 : 64); bits; bits &= bits - 1) {
                const int64_t i = i0 + __builtin_ctzll(bits);
                const REAL v = xr[i];
                const REAL *restrict w = wt + i * n;
                for (int64_t j = 0; j < n; j++) row[j] += v * w[j];
            }
    }
}


/* gwt (K, N) = x^T g over the nonzero entries of x (R, K), g (R, N): row i of gwt sums x[r, i] g[r, :] over the rows
   r in increasing order (the same order whatever the thread count), with fused multiply-adds. First, per chunk of
   64 rows and input i, a 64-bit mask of the rows where x[r, i] != 0 (bit-matrix transposes of the rows' nonzero
   bits), and whether every nonzero entry is 1 (spikes: no value to load). Then the work items, blocks of 8 vectors
   of columns and one for the columns left, split further by inputs when there are fewer items than threads, run
   chunk after chunk: the chunk's part of g of the block is copied into a contiguous scratch block (rows N apart
   would collide in the L1 cache when N is a power of two) and the block of row i of gwt is held in registers while
   the chunk's rows of i add into it. Returns 0, or -1 when out of memory. */
static inline CONTRACT void NAME(grad_block8)(int64_t i0, int64_t i1, int64_t k, int64_t n,
                                              const uint64_t *restrict mask, const REAL *x, int binary,
                                              const REAL *restrict gp, REAL *gwt) {
    for (int64_t i = i0; i < i1; i++) {
        uint64_t bits = mask[i];
        if (!bits) continue;
        NAME(vec) *out = (NAME(vec) *)(gwt + i * n);
        BLOCK8_LOAD(out);
        for (; bits; bits &= bits - 1) {
            const int64_t q = __builtin_ctzll(bits);
            BLOCK8_ADD(binary ? (REAL)1 : x[q * k + i], (const NAME(vec) *)(gp + q * 8 * LANES));
        }
        BLOCK8_STORE(out);
    }
}

static inline CONTRACT void NAME(grad_columns)(int64_t i0, int64_t i1, int64_t k, int64_t n,
                                               const uint64_t *restrict mask, const REAL *x, const REAL *g, REAL *gwt,
                                               int64_t j0) {
    for (int64_t i = i0; i < i1; i++)
        for (uint64_t bits = mask[i]; bits; bits &= bits - 1) {
            const int64_t q = __builtin_ctzll(bits);
            const REAL v = x[q * k + i];
            const REAL *restrict gr = g + q * n;
            REAL *restrict acc = gwt + i * n;
            for (int64_t j = j0; j < n; j++) acc[j] += v * gr[j];
        }
}

int NAME(event_linear_grad)(int64_t rows, int64_t k, int64_t n, const REAL *x, const REAL *g, REAL *gwt,
                            int threads) {
    const int64_t width = 8 * LANES, blocks = n / width, items = blocks + (blocks * width < n);
    const int64_t chunks = (rows + 63) / 64;
    uint64_t *mask = malloc((size_t)(chunks * k > 0 ? chunks * k : 1) * sizeof(uint64_t));
    if (!mask) return -1;
    int failed = 0, binary = 1; /* binary is shared: any thread that meets a value other than 0 and 1 clears it */
#pragma omp parallel num_threads(threads) if (threads > 1) reduction(| : failed)
    {
        const int64_t parts = omp_get_num_threads(), part = omp_get_thread_num();
        const int64_t split = parts > items ? parts / items : 1, work = items * split;
        const int64_t w0 = work * part / parts, w1 = work * (part + 1) / parts;
        REAL *gp = malloc((size_t)(64 * width) * sizeof(REAL));
        failed = !gp;
        uint64_t bits[64];
#pragma omp for schedule(static)
        for (int64_t i = 0; i < k; i++) memset(gwt + i * n, 0, (size_t)n * sizeof(REAL));
#pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; c++) {
            const int64_t len = rows - c * 64 < 64 ? rows - c * 64 : 64;
            for (int64_t c0 = 0; c0 < k; c0 += 64) {
                const int64_t cols = k - c0 < 64 ? k - c0 : 64;
                for (int64_t q = 0; q < 64; q++) {
                    const REAL *xr = x + (c * 64 + q) * k + c0;
                    bits[q] = q < len ? NONZERO_BITS(xr, cols) : 0;
                    int ones = 1;
                    if (q < len)
                        for (int64_t i = 0; i < cols; i++) ones &= xr[i] == 0 || xr[i] == 1;
                    if (!ones) {
#pragma omp atomic write
                        binary = 0;
                    }
                }
                transpose_bits64(bits);
                memcpy(mask + c * k + c0, bits, (size_t)cols * sizeof(uint64_t));
            }
        }
        for (int64_t c = 0; c < chunks && !failed; c++) {
            const int64_t r0 = c * 64, len = rows - r0 < 64 ? rows - r0 : 64;
            for (int64_t w = w0; w < w1; w++) {
                const int64_t b = w / split, i0 = k * (w % split) / split, i1 = k * (w % split + 1) / split;
                if (b == blocks) {
                    NAME(grad_columns)(i0, i1, k, n, mask + c * k, x + r0 * k, g + r0 * n, gwt, blocks * width);
                    continue;
                }
                for (int64_t q = 0; q < len; q++)
                    memcpy(gp + q * width, g + (r0 + q) * n + b * width, (size_t)width * sizeof(REAL));
                NAME(grad_block8)(i0, i1, k, n, mask + c * k, x + r0 * k, binary, gp, gwt + b * width);
            }
        }
        free(gp);
    }
    free(mask);
    return failed ? -1 : 0;
}

/* Dense products with a matrix packed once and reused for every step of a sequence (the recurrent weight): B (K, N)
   in panels of PANEL = PANEL_VECS LANES columns, panel p holding B[k, p PANEL + q] at packed[(p K + k) PANEL + q],
   zero past column N. Blocks of PANEL_ROWS rows by PANEL_VECS vectors are summed in registers over PANEL_DEPTH
   values of k at a time. Against torch.addmm on a (64, N) x (N, N) float32 product (benchmarks/event_products.py
   --sections dense, 2 threads): 2.1-2.3x at N = 128, 1.4-1.6x at 512, 1.06-1.26x at 2048, 0.95-0.97x at 4096, where
   the packed W (64 MB) streams from memory once per product. In a separate harness (best of 5 medians, not in the
   repository) 6 x 4 blocks by depths 64-256 and 8 x 3, 12 x 2, 14 x 2 by 128 ran within 10 % of 8 x 2 by 128,
   none better at every N, and the prefetch of the next depth block by the first row block took N = 4096 from
   0.93-0.99x to 1.07-1.13x addmm. */
#define PANEL_VECS 2
#define PANEL_ROWS 8
#define PANEL_DEPTH 128
#define PANEL (PANEL_VECS * LANES)

/* Number of REALs of the packed (K, N) matrix. */
int64_t NAME(packed_size)(int64_t k, int64_t n) { return (n + PANEL - 1) / PANEL * k * PANEL; }

/* packed = B in panels, B[k, q] read at b[k sk + q sn] (sk = N, sn = 1: B as stored; sk = 1, sn = K: its
   transpose). */
void NAME(pack_panels)(int64_t k, int64_t n, const REAL *b, int64_t sk, int64_t sn, REAL *packed, int threads) {
    const int64_t panels = (n + PANEL - 1) / PANEL;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t p = 0; p < panels; p++)
        for (int64_t kk = 0; kk < k; kk++) {
            REAL *restrict out = packed + (p * k + kk) * PANEL;
            for (int64_t q = 0; q < PANEL; q++) {
                const int64_t col = p * PANEL + q;
                out[q] = col < n ? b[kk * sk + col * sn] : (REAL)0;
            }
        }
}

/* c[r, q] = base[r, q] + sum over kk < depth of a[r, kk] bp[kk, q] for r < rows <= PANEL_ROWS, q < cols <= PANEL:
   the sum in registers (fused multiply-adds in increasing kk, from 0), then added to base (c0, else c itself) in
   one rounding. Rows past `rows` repeat the last row (computed, not stored). next (or NULL): a block of the same
   size to prefetch, two cache lines per kk. */
static inline CONTRACT void NAME(panel_block)(int64_t depth, int rows, const REAL *a, int64_t lda,
                                              const REAL *restrict bp, const REAL *next, const REAL *c0, REAL *c,
                                              int64_t ldc, int64_t cols) {
    const REAL *ar[PANEL_ROWS];
    for (int r = 0; r < PANEL_ROWS; r++) ar[r] = a + (r < rows ? r : rows - 1) * lda;
    NAME(vec) acc[PANEL_ROWS][PANEL_VECS];
    for (int r = 0; r < PANEL_ROWS; r++)
        for (int v = 0; v < PANEL_VECS; v++) acc[r][v] = (NAME(vec)){0};
    for (int64_t kk = 0; kk < depth; kk++) {
        NAME(vec) bv[PANEL_VECS];
        for (int v = 0; v < PANEL_VECS; v++) bv[v] = *(const NAME(vec) *)(bp + kk * PANEL + v * LANES);
        if (next)
            for (int v = 0; v < PANEL_VECS; v++) __builtin_prefetch(next + kk * PANEL + v * LANES, 0, 3);
        for (int r = 0; r < PANEL_ROWS; r++) {
            const REAL x = ar[r][kk];
            for (int v = 0; v < PANEL_VECS; v++) acc[r][v] += x * bv[v];
        }
    }
    for (int r = 0; r < rows; r++) {
        const REAL *base = (c0 ? c0 : c) + r * ldc;
        REAL *out = c + r * ldc;
        if (cols == PANEL) {
            for (int v = 0; v < PANEL_VECS; v++)
                *(NAME(vec) *)(out + v * LANES) = *(const NAME(vec) *)(base + v * LANES) + acc[r][v];
        } else {
            for (int64_t q = 0; q < cols; q++) out[q] = base[q] + acc[r][q / LANES][q % LANES];
        }
    }
}

/* c = c0 + a B (c0 NULL: c += a B) for a (M, K) with rows lda apart, c and c0 (M, N) row-major, B packed by
   pack_panels; c may be c0. Each entry sums a[r, :] B[:, q] in blocks of PANEL_DEPTH in increasing k (fused
   multiply-adds from 0 within a block), each block's sum added to the entry in turn, whatever the thread count.
   Threads take whole panels. */
void NAME(panel_matmul)(int64_t m, int64_t n, int64_t k, const REAL *a, int64_t lda, const REAL *packed,
                        const REAL *c0, REAL *c, int threads) {
    const int64_t panels = (n + PANEL - 1) / PANEL;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t p = 0; p < panels; p++) {
        const int64_t col = p * PANEL, cols = n - col < PANEL ? n - col : PANEL;
        for (int64_t k0 = 0; k0 < k || k0 == 0; k0 += PANEL_DEPTH) {
            const int64_t depth = k - k0 < PANEL_DEPTH ? k - k0 : PANEL_DEPTH;
            for (int64_t r = 0; r < m; r += PANEL_ROWS)
                NAME(panel_block)(depth, (int)(m - r < PANEL_ROWS ? m - r : PANEL_ROWS), a + r * lda + k0, lda,
                                  packed + (p * k + k0) * PANEL,
                                  r == 0 && (p + 1 < panels || k0 + depth < k) ? packed + (p * k + k0 + depth) * PANEL
                                                                              : NULL,
                                  k0 == 0 && c0 ? c0 + r * n + col : NULL,
                                  c + r * n + col, n, cols);
        }
    }
}

/* The forward time loop of the ALIF kernel from step t0 (hrsnn/fused.py, _ALIFSequence._forward_native). ops holds
   the sequence operands (see seq_at), in this order: spikes s (slice t: s_{t-1}, slice t + 1: s_t), membranes u,
   traces eta (absent for LIF), currents c, inputs I (the current with the recurrent product, where it is written).
   counts[0]: spikes in s_{t0-1}, on return those of the last s written; counts[1] accumulates the spikes of every
   s_{t-1} stepped from. recurrent: 0 none (I = c), 1 CSR of W^T (ptr, idx, val), 2 dense (rows of W^T in wt for
   the spike-driven steps, packed_t: W^T in panels for the others). A step whose s_{t-1} has at most `limit` spikes
   adds W s_{t-1} spike-driven in the step kernel (adding the bias there unless `ready`: I already holds c + b);
   otherwise a dense W adds it with panel_matmul to c + b (I itself when ready), and a CSR one returns t so that
   the caller writes I_t (after which it calls again from t with done = 1). Returns the step it stopped at (the
   number of steps when done), or -1 when out of memory. */
int64_t NAME(alif_forward_loop)(int64_t batch, int64_t n, int64_t t0, int64_t steps, const int64_t *ops,
                                int64_t *counts, int recurrent, int64_t limit, int done, const REAL *bias, int ready,
                                const int64_t *ptr, const int32_t *idx, const REAL *val, const REAL *wt,
                                const REAL *packed_t, const REAL *alpha, const REAL *rho, const REAL *scale,
                                double b0, double beta, double dt, int adaptive, int threads) {
    const int64_t *S = ops, *U = ops + 3, *E = ops + 6, *C = ops + 9, *I = ops + 12;
    int64_t count = counts[0];
    for (int64_t t = t0; t < steps; t++) {
        if (recurrent == 1 && count > limit && !(t == t0 && done)) {
            counts[0] = count;
            return t;
        }
        counts[1] += count;
        const REAL *c = seq_at(C, t), *b = NULL, *s_prev = seq_at(S, t);
        REAL *cur = (REAL *)c;
        int mode = 0;
        if (recurrent) {
            cur = seq_at(I, t);
            c = ready ? cur : c;
            if (count <= limit) {
                mode = recurrent;
                b = ready ? NULL : bias;
            } else if (recurrent == 2) {
                if (bias && !ready)
                    for (int64_t o = 0; o < batch * n; o += n) NAME(add_bias)(n, c + o, bias, cur + o);
                NAME(panel_matmul)(batch, n, n, s_prev, n, packed_t, bias ? cur : c, cur, threads);
            }
        }
        count = NAME(alif_forward_step)(batch, n, mode, c, b, s_prev, cur, ptr, idx, val, wt, seq_at(U, t),
                                        seq_at(U, t + 1), seq_at(E, t), seq_at(E, t + 1), seq_at(S, t + 1), alpha,
                                        rho, scale, b0, beta, dt, adaptive, threads);
        if (count < 0) return -1;
    }
    counts[0] = count;
    return steps;
}

/* The backward time loop of the ALIF kernel over steps end - 1 down to start (hrsnn/fused.py,
   _ALIFSequence._backward_native): alif_backward_step for each, then, for a dense W (packed: W in panels), the
   product s_bar += i_bar W. ops (see seq_at), in this order: membranes u (slice t + 1: u_t, slice t: u_{t-1}),
   incoming gradients of the spikes, membranes and traces (absent: none), spikes (slice t: s_{t-1}), traces,
   inputs I, and i_bar (written). psi: the surrogate derivative of steps start .. end - 1 in consecutive slices of
   B x N when `surrogate` is 0. The other arguments are alif_backward_step's. Returns 0, or -1 when out of
   memory. */
int NAME(alif_backward_loop)(int64_t batch, int64_t n, int64_t start, int64_t end, const int64_t *ops, int adaptive,
                             int surrogate, const double *sg, const REAL *psi, REAL *u_bar, REAL *eta_bar,
                             REAL *s_bar, REAL *acc_alpha, REAL *acc_rho, REAL *acc_bias, const REAL *alpha,
                             const REAL *rho, const REAL *scale, double b0, double beta, double dt, double r_m,
                             const REAL *packed, int64_t tiles, int64_t tile, const int64_t *tptr,
                             const uint8_t *tidx, const REAL *tval, REAL *gt, REAL *acc_t, int64_t groups,
                             int threads) {
    const int64_t *U = ops, *GS = ops + 3, *GU = ops + 6, *GE = ops + 9, *S = ops + 12, *E = ops + 15, *I = ops + 18,
                  *IB = ops + 21;
    for (int64_t t = end - 1; t >= start; t--) {
        REAL *i_bar = seq_at(IB, t);
        if (NAME(alif_backward_step)(batch, n, adaptive, surrogate, sg, seq_at(U, t + 1),
                                     psi ? psi + (t - start) * batch * n : NULL, seq_at(GS, t), seq_at(GU, t),
                                     seq_at(GE, t), seq_at(S, t), seq_at(E, t), seq_at(E, t + 1), seq_at(U, t),
                                     seq_at(I, t), u_bar, eta_bar, s_bar, acc_alpha, acc_rho, acc_bias, i_bar, alpha,
                                     rho, scale, b0, beta, dt, r_m, tiles, tile, tptr, tidx, tval, gt, acc_t, groups,
                                     threads))
            return -1;
        if (packed) NAME(panel_matmul)(batch, n, n, i_bar, n, packed, NULL, s_bar, threads);
    }
    return 0;
}
#undef PANEL
#undef PANEL_VECS
#undef PANEL_ROWS
#undef PANEL_DEPTH
#undef LANES
