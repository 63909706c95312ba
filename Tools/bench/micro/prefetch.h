static inline void fl_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }
