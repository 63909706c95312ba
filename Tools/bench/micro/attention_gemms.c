// The seven GEMM calls per row block of Factorlab's causal attention core (forward S and E V;
// backward S, dP, dV, dQ, dK: Kernels.attentionForward/attentionBackward, and the bench's
// KernelBench.attentionGEMMs), on one thread, for `pairs` (batch, head) pairs of T positions,
// head size 64, C = 768, qkv packed [B, T, 3C]. Only the time means anything. It links to any
// CBLAS, so that two BLAS libraries can be compared on exactly these calls:
//   cc -O2 attention_gemms.c $(pkg-config --cflags --libs openblas) -o att_openblas
//   cc -O2 attention_gemms.c -L/usr/lib/x86_64-linux-gnu/blis-openmp -lblis -o att_blis   (libblis-dev)
// Usage: OPENBLAS_NUM_THREADS=1 ./att_openblas T ROW_BLOCK PAIRS   (e.g. 1024 64 12: half of the
// bench's 24 pairs at T = 1024, i.e. one of its two threads' share)
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s T ROW_BLOCK PAIRS\n", argv[0]); return 2; }
    const int t = atoi(argv[1]), blk = atoi(argv[2]), pairs = atoi(argv[3]), hd = 64, c = 768, c3 = 3 * c, heads = 12;
    if (t < 1 || blk < 1 || pairs < 1) { fprintf(stderr, "T, ROW_BLOCK and PAIRS must be positive\n"); return 2; }
    const int b = (pairs + heads - 1) / heads;
    float *x = malloc(sizeof(float) * (size_t)b * t * c3), *r = calloc((size_t)b * t * c3, sizeof(float));
    float *dy = malloc(sizeof(float) * (size_t)b * t * c), *o = calloc((size_t)b * t * c, sizeof(float));
    float *p = malloc(sizeof(float) * (size_t)blk * t), *dP = malloc(sizeof(float) * (size_t)blk * t);
    for (size_t i = 0; i < (size_t)b * t * c3; i++) x[i] = (float)((i * 7919) % 1000) / 1000.f - 0.5f;
    for (size_t i = 0; i < (size_t)b * t * c; i++) dy[i] = (float)((i * 104729) % 1000) / 1000.f - 0.5f;
    for (size_t i = 0; i < (size_t)blk * t; i++) { p[i] = 0.001f * (i % 97); dP[i] = 0.002f * (i % 89); }
    double best = 1e9;
    for (int rep = 0; rep < 6; rep++) {
        double t0 = now();
        for (int pair = 0; pair < pairs; pair++) {
            int bi = pair / heads, h = pair % heads;
            float *q = x + (size_t)bi * t * c3 + h * hd, *k = q + c, *v = q + 2 * c;
            float *dq = r + (size_t)bi * t * c3 + h * hd, *dk = dq + c, *dv = dq + 2 * c;
            float *dO = dy + (size_t)bi * t * c + h * hd, *out = o + (size_t)bi * t * c + h * hd;
            for (int r0 = 0; r0 < t;) {
                int rows = blk < t - r0 ? blk : t - r0, keys = r0 + rows;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, keys, hd, 1, q + (size_t)r0 * c3, c3, k, c3, 0, p, t);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, keys, 1, p, t, v, c3, 0, out + (size_t)r0 * c, c);
                r0 = keys;
            }
            for (int r0 = ((t - 1) / blk) * blk; r0 >= 0; r0 -= blk) {
                int rows = blk < t - r0 ? blk : t - r0, keys = r0 + rows;
                float beta = keys == t ? 0 : 1;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, keys, hd, 1, q + (size_t)r0 * c3, c3, k, c3, 0, p, t);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, keys, hd, 1, dO + (size_t)r0 * c, c, v, c3, 0, dP, t);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, keys, hd, rows, 1, p, t, dO + (size_t)r0 * c, c, beta, dv, c3);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, keys, 1, dP, t, k, c3, 0, dq + (size_t)r0 * c3, c3);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, keys, hd, rows, 1, dP, t, q + (size_t)r0 * c3, c3, beta, dk, c3);
            }
        }
        double elapsed = now() - t0;
        if (elapsed < best) best = elapsed;
    }
    double flops = 0; // the FLOPs multiplied: 7 GEMMs of 2 * rows * keys * hd per block
    for (int r0 = 0; r0 < t; r0 += blk) { int rows = blk < t - r0 ? blk : t - r0; flops += 7.0 * 2 * rows * (r0 + rows) * hd; }
    flops *= pairs;
    printf("T=%d row block %d, %d pairs, one thread: %.1f ms, %.1f GFLOP/s\n", t, blk, pairs, best * 1e3, flops / best / 1e9);
    free(x); free(r); free(dy); free(o); free(p); free(dP);
    return 0;
}
