/*
 * NCCL for tensor parallelism, loaded at run time: `--tp 1` never needs it, and a machine
 * whose NCCL lives outside the linker's path (a Python wheel, a custom build) still works
 * through ignis_cuda_opts.nccl_lib (IGNIS_NCCL_LIB in the CLI). Only the calls ignis makes
 * are bound. Each backend (and each rank) opens its own table: dlopen counts references,
 * so the library is mapped once.
 *
 * Multicast (NVLS) stays off: NCCL_NVLS_ENABLE=0 is set before the first communicator is
 * made unless the caller set it, because multicast objects can take a shared host's GPUs
 * out of service.
 */
#ifndef IG_NCCL_H
#define IG_NCCL_H

#include <nccl.h>

#include "ignis.h"

typedef struct ig_nccl_api {
    void *handle; /* dlopen's */
    ncclResult_t (*GetUniqueId)(ncclUniqueId *id);
    ncclResult_t (*CommInitRank)(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank);
    ncclResult_t (*CommDestroy)(ncclComm_t comm);
    ncclResult_t (*AllReduce)(const void *s, void *r, size_t n, ncclDataType_t t, ncclRedOp_t op, ncclComm_t c,
                              cudaStream_t st);
    ncclResult_t (*AllGather)(const void *s, void *r, size_t n, ncclDataType_t t, ncclComm_t c, cudaStream_t st);
    ncclResult_t (*Broadcast)(const void *s, void *r, size_t n, ncclDataType_t t, int root, ncclComm_t c,
                              cudaStream_t st);
    ncclResult_t (*GroupStart)(void);
    ncclResult_t (*GroupEnd)(void);
    const char *(*GetErrorString)(ncclResult_t r);
} ig_nccl_api;

/* Loads libnccl from `path` (NULL or "": libnccl.so.2 from the loader's path, then CUDA's
 * library folders) and binds its calls into a new table, released by ig_nccl_close.
 * IGNIS_E_UNSUPPORTED with a how-to when the library or a symbol is absent. Thread-safe. */
ignis_status ig_nccl_open(const char *path, ig_nccl_api **out);
void ig_nccl_close(ig_nccl_api *api);

#define IG_CKN(api, call)                                                                                              \
    do {                                                                                                               \
        ncclResult_t ig_ckn_r_ = (call);                                                                               \
        if (ig_ckn_r_ != ncclSuccess)                                                                                  \
            return ig_err(IGNIS_E_DEVICE, "NCCL: %s failed at %s:%d: %s", #call, __FILE__, __LINE__,                   \
                          (api)->GetErrorString(ig_ckn_r_));                                                           \
    } while (0)

#endif
