/* NVML through dlopen/dlsym (nvml_loader.h). Only the calls the telemetry samples are
 * bound; the library stays loaded until ig_nvml_close. */
#include "profile/nvml_loader.h"

#include <math.h>
#include <stdlib.h>

#include "core/error.h"

#if defined(IGNIS_HAVE_NVML_H)
#include <dlfcn.h>
#include <nvml.h>

struct ig_nvml {
    void *lib;
    nvmlDevice_t dev;
    nvmlReturn_t (*Init)(void);
    nvmlReturn_t (*Shutdown)(void);
    const char *(*ErrorString)(nvmlReturn_t);
    nvmlReturn_t (*ByIndex)(unsigned int, nvmlDevice_t *);
    nvmlReturn_t (*ByPci)(const char *, nvmlDevice_t *);
    nvmlReturn_t (*Power)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*Energy)(nvmlDevice_t, unsigned long long *);
    nvmlReturn_t (*Limit)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*Clock)(nvmlDevice_t, nvmlClockType_t, unsigned int *);
    nvmlReturn_t (*Util)(nvmlDevice_t, nvmlUtilization_t *);
    nvmlReturn_t (*Mem)(nvmlDevice_t, nvmlMemory_t *);
    nvmlReturn_t (*Temp)(nvmlDevice_t, nvmlTemperatureSensors_t, unsigned int *);
    nvmlReturn_t (*Reasons)(nvmlDevice_t, unsigned long long *);
};

static ignis_status fail(ig_nvml *n, ignis_status s, const char *what, nvmlReturn_t r)
{
    ignis_status e = ig_err(s, "NVML: %s: %s", what, n->ErrorString ? n->ErrorString(r) : "error");
    ig_nvml_close(n);
    return e;
}

ignis_status ig_nvml_open(const char *lib, const char *pci, int index, ig_nvml **out)
{
    *out = NULL;
    const char *path = lib && *lib ? lib : "libnvidia-ml.so.1";
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return ig_err(IGNIS_E_UNSUPPORTED, "GPU telemetry needs NVML, and %s could not be loaded (%s)", path,
                      dlerror());
    ig_nvml *n = calloc(1, sizeof *n);
    if (!n) {
        dlclose(h);
        return ig_err(IGNIS_E_NOMEM, "NVML: out of memory");
    }
    n->lib = h;
    /* required: init and a device handle; the readings are optional (NaN when absent) */
#define SYM(field, name) *(void **)&n->field = dlsym(h, name)
    SYM(Init, "nvmlInit_v2");
    SYM(Shutdown, "nvmlShutdown");
    SYM(ErrorString, "nvmlErrorString");
    SYM(ByIndex, "nvmlDeviceGetHandleByIndex_v2");
    SYM(ByPci, "nvmlDeviceGetHandleByPciBusId_v2");
    SYM(Power, "nvmlDeviceGetPowerUsage");
    SYM(Energy, "nvmlDeviceGetTotalEnergyConsumption");
    SYM(Limit, "nvmlDeviceGetEnforcedPowerLimit");
    SYM(Clock, "nvmlDeviceGetClockInfo");
    SYM(Util, "nvmlDeviceGetUtilizationRates");
    SYM(Mem, "nvmlDeviceGetMemoryInfo");
    SYM(Temp, "nvmlDeviceGetTemperature");
    SYM(Reasons, "nvmlDeviceGetCurrentClocksEventReasons");
    if (!n->Reasons) SYM(Reasons, "nvmlDeviceGetCurrentClocksThrottleReasons"); /* drivers before 535 */
#undef SYM
    if (!n->Init || !n->Shutdown || !n->ByIndex) {
        ig_nvml_close(n);
        return ig_err(IGNIS_E_UNSUPPORTED, "NVML: %s lacks nvmlInit_v2/nvmlDeviceGetHandleByIndex_v2 (too old?)", path);
    }
    nvmlReturn_t r = n->Init();
    if (r != NVML_SUCCESS) {
        n->Shutdown = NULL; /* nothing to shut down */
        return fail(n, IGNIS_E_UNSUPPORTED, "nvmlInit", r);
    }
    r = pci && *pci && n->ByPci ? n->ByPci(pci, &n->dev) : n->ByIndex((unsigned)index, &n->dev);
    if (r != NVML_SUCCESS) return fail(n, IGNIS_E_DEVICE, pci && *pci ? pci : "device handle by index", r);
    *out = n;
    return IGNIS_OK;
}

void ig_nvml_close(ig_nvml *n)
{
    if (!n) return;
    if (n->Shutdown) n->Shutdown();
    if (n->lib) dlclose(n->lib);
    free(n);
}

void ig_nvml_read(ig_nvml *n, ig_nvml_reading *o)
{
    unsigned int u = 0;
    unsigned long long ull = 0;
    nvmlUtilization_t ut;
    nvmlMemory_t mem;
    o->power_w = n->Power && n->Power(n->dev, &u) == NVML_SUCCESS ? u * 1e-3 : NAN;
    o->energy_mj = n->Energy && n->Energy(n->dev, &ull) == NVML_SUCCESS ? (uint64_t)ull : UINT64_MAX;
    o->sm_mhz = n->Clock && n->Clock(n->dev, NVML_CLOCK_SM, &u) == NVML_SUCCESS ? u : NAN;
    o->mem_mhz = n->Clock && n->Clock(n->dev, NVML_CLOCK_MEM, &u) == NVML_SUCCESS ? u : NAN;
    if (n->Util && n->Util(n->dev, &ut) == NVML_SUCCESS) {
        o->gpu_util_pct = ut.gpu;
        o->mem_util_pct = ut.memory;
    } else {
        o->gpu_util_pct = o->mem_util_pct = NAN;
    }
    o->mem_used_mb = n->Mem && n->Mem(n->dev, &mem) == NVML_SUCCESS ? (double)mem.used / (1024.0 * 1024.0) : NAN;
    o->temp_c = n->Temp && n->Temp(n->dev, NVML_TEMPERATURE_GPU, &u) == NVML_SUCCESS ? u : NAN;
    o->reasons = n->Reasons && n->Reasons(n->dev, &ull) == NVML_SUCCESS ? (uint64_t)ull : 0;
}

double ig_nvml_power_limit_w(ig_nvml *n)
{
    unsigned int u = 0;
    return n->Limit && n->Limit(n->dev, &u) == NVML_SUCCESS ? u * 1e-3 : NAN;
}

#else /* built without nvml.h */

ignis_status ig_nvml_open(const char *lib, const char *pci, int index, ig_nvml **out)
{
    (void)lib;
    (void)pci;
    (void)index;
    *out = NULL;
    return ig_err(IGNIS_E_UNSUPPORTED, "GPU telemetry: ignis was built without nvml.h (.ci/setup installs it)");
}
void ig_nvml_close(ig_nvml *n) { (void)n; }
void ig_nvml_read(ig_nvml *n, ig_nvml_reading *r)
{
    (void)n;
    (void)r;
}
double ig_nvml_power_limit_w(ig_nvml *n)
{
    (void)n;
    return NAN;
}
#endif
