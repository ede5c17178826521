/* Built only without nvcc: the CUDA backend's entry points report that it is absent. */
#include "backend/backend.h"
#include "core/error.h"

ignis_status ig_backend_cuda_create(const ig_model_desc *d, const ig_backend_opts *o, ig_backend **out)
{
    (void)d;
    (void)o;
    *out = NULL;
    return ig_err(IGNIS_E_UNSUPPORTED, "this ignis was built without CUDA (nvcc was not found at configure time)");
}

int ig_cuda_device_count(void) { return 0; }
