#include "backend/cuda/nccl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"

static ig_nccl_api g_api;
static ignis_status g_status = IGNIS_E_INTERNAL;
static char g_msg[512];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void *open_lib(void)
{
    const char *env = getenv("IGNIS_NCCL_LIB");
    if (env && *env) return dlopen(env, RTLD_NOW | RTLD_LOCAL);
    static const char *names[] = {"libnccl.so.2", "libnccl.so", "/usr/local/cuda/lib/libnccl.so.2",
                                  "/usr/local/cuda/lib64/libnccl.so.2"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
    }
    return NULL;
}

static void load_once(void)
{
    /* never let a communicator use NVLink multicast unless the operator asked for it */
    setenv("NCCL_NVLS_ENABLE", "0", 0);
    void *h = open_lib();
    if (!h) {
        snprintf(g_msg, sizeof g_msg,
                 "tensor parallelism needs NCCL, and libnccl.so.2 could not be loaded (%s); install NCCL or set "
                 "IGNIS_NCCL_LIB to its path",
                 dlerror());
        g_status = IGNIS_E_UNSUPPORTED;
        return;
    }
#define BIND(f)                                                                                                        \
    do {                                                                                                               \
        *(void **)&g_api.f = dlsym(h, "nccl" #f);                                                                      \
        if (!g_api.f) {                                                                                                \
            snprintf(g_msg, sizeof g_msg, "libnccl has no symbol nccl%s (NCCL too old?)", #f);                         \
            g_status = IGNIS_E_UNSUPPORTED;                                                                            \
            return;                                                                                                    \
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
    g_status = IGNIS_OK;
}

ignis_status ig_nccl_load(const ig_nccl_api **api)
{
    pthread_once(&g_once, load_once);
    if (g_status != IGNIS_OK) return ig_err(g_status, "%s", g_msg);
    *api = &g_api;
    return IGNIS_OK;
}
