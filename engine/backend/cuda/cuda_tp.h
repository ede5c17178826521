/* Tensor parallelism: a backend over several CUDA ranks joined by NCCL (cuda_tp.c). */
#ifndef IG_CUDA_TP_H
#define IG_CUDA_TP_H

#include <nccl.h>

#include "backend/backend.h"

/* The backend for d->tp > 1: one rank per GPU from o->device on. */
ignis_status ig_cuda_tp_create(const ig_model_desc *d, const ig_backend_opts *o, ig_backend **out);

/* One rank: the CUDA backend over d->ranks[rank] on `device`, joined to the communicator
 * of `id` (NULL with nranks == 1: no communicator). Must run on all ranks concurrently. */
ignis_status ig_cuda_rank_create(const ig_model_desc *d, int rank, int nranks, int device, const ncclUniqueId *id,
                                 const ig_backend_opts *o, ig_backend **out);

#endif
