/* A fixed pool of worker threads for data-parallel loops on the CPU backend. Workers
 * persist across calls so a decode step does not pay thread creation. */
#ifndef IG_THREADPOOL_H
#define IG_THREADPOOL_H

typedef struct ig_pool ig_pool;

/* fn(ctx, begin, end, worker) processes items [begin, end). */
typedef void (*ig_range_fn)(void *ctx, int begin, int end, int worker);

ig_pool *ig_pool_create(int n_threads); /* n <= 0: online cores; NULL on failure */
void ig_pool_destroy(ig_pool *p);
int ig_pool_size(const ig_pool *p);
/* Splits [0, n) into contiguous chunks of at least `grain` items and runs them on all
 * workers (the caller is worker 0); returns when every chunk is done. Not reentrant. */
void ig_pool_run(ig_pool *p, int n, int grain, ig_range_fn fn, void *ctx);

#endif
