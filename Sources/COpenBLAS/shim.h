// OpenBLAS's CBLAS interface and the LAPACKE routines Factorlab calls (SVD for projections).
#pragma once
#include <cblas.h>
#include <lapacke.h>

// Exposed by OpenBLAS; declared in cblas.h on most builds, repeated here for clarity.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_config(void);
char *openblas_get_corename(void);

// glibc's allocator tuning (mallopt), used to keep large tensor blocks in the heap between steps.
#ifdef __linux__
#include <malloc.h>
#endif

// A read prefetch into all cache levels, for the matrix-vector kernels that stream weights once
// (Swift has no prefetch of its own; this inlines to one `prefetcht0`). Prefetching an address
// that is not mapped does not fault, so kernels may prefetch past the end of their data.
static inline void factorlab_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

// A spin-wait hint (x86 `pause`), for the threads of Parallel's spinning pool while they watch
// for the next call: it lets the core save power and tells it the loop is a spin.
static inline void factorlab_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
