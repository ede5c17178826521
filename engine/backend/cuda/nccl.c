#include "backend/cuda/nccl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"

/* RTLD_NODELETE: closing a table never unmaps NCCL, whose threads and thread-local
 * destructors may outlive the communicators. */
static void *open_lib(const char *path)
{
    if (path && *path) return dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    static const char *names[] = {"libnccl.so.2", "libnccl.so", "/usr/local/cuda/lib/libnccl.so.2",
                                  "/usr/local/cuda/lib64/libnccl.so.2"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (h) return h;
    }
    return NULL;
}

static pthread_once_t g_nvls_once = PTHREAD_ONCE_INIT;

/* Never let a communicator use NVLink multicast unless the operator asked for it (an
 * NCCL_NVLS_ENABLE already set is kept). Once per process: setenv is not safe beside
 * concurrent rank threads. */
static void nvls_off(void) { setenv("NCCL_NVLS_ENABLE", "0", 0); }

ignis_status ig_nccl_open(const char *path, ig_nccl_api **out)
{
    *out = NULL;
    pthread_once(&g_nvls_once, nvls_off);
    void *h = open_lib(path);
    if (!h) {
        if (path && *path)
            return ig_err(IGNIS_E_UNSUPPORTED, "tensor parallelism needs NCCL, and %s could not be loaded (%s)", path,
                          dlerror());
        return ig_err(IGNIS_E_UNSUPPORTED,
                      "tensor parallelism needs NCCL, and libnccl.so.2 could not be loaded (%s); install NCCL or "
                      "give its path (ignis_cuda_opts.nccl_lib; IGNIS_NCCL_LIB in the CLI)",
                      dlerror());
    }
    ig_nccl_api *api = calloc(1, sizeof *api);
    if (!api) {
        dlclose(h);
        return ig_err(IGNIS_E_NOMEM, "out of memory");
    }
    api->handle = h;
#define BIND(f)                                                                                                        \
    do {                                                                                                               \
        *(void **)&api->f = dlsym(h, "nccl" #f);                                                                       \
        if (!api->f) {                                                                                                 \
            ig_nccl_close(api);                                                                                        \
            return ig_err(IGNIS_E_UNSUPPORTED, "%s has no symbol nccl%s (NCCL too old?)",                              \
                          path && *path ? path : "libnccl", #f);                                                       \
        }                                                                                                              \
    } while (0)
    BIND(GetUniqueId);
    BIND(CommInitRank);
    BIND(CommDestroy);
    BIND(AllReduce);
    BIND(AllGather);
    BIND(Broadcast);
    BIND(GroupStart);
    BIND(GroupEnd);
    BIND(GetErrorString);
#undef BIND
    *out = api;
    return IGNIS_OK;
}

void ig_nccl_close(ig_nccl_api *api)
{
    if (!api) return;
    if (api->handle) dlclose(api->handle);
    free(api);
}
