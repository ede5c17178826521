/* The CUPTI activity collector (cupti_collect.h). Records are parsed as their buffers
 * complete (on CUPTI's thread or inside the flush) into flat arrays under one mutex;
 * ig_cupti_take resolves each activity's engine step from the external-correlation map. */
#include "profile/cupti_collect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/grow.h"

#if defined(IGNIS_HAVE_CUPTI)
#include <cupti.h>
#include <pthread.h>

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static size_t g_buf_bytes;
static int g_inited;

typedef struct corr {
    uint32_t corr;
    uint64_t ext;
} corr;

static struct {
    ig_act *acts;
    uint32_t *act_corr; /* [n_acts]: CUPTI correlation id of each activity */
    int n_acts, cap_acts, cap_act_corr;
    char **names;
    const char **name_ptrs; /* CUPTI's pointer for each name (shared by records of one kernel) */
    int n_names, cap_names, cap_name_ptrs;
    corr *corrs;
    int n_corrs, cap_corrs;
    uint64_t dropped, overhead_ns;
    int oom;
} g;

static int name_index(const char *name)
{
    if (!name) name = "?";
    for (int i = g.n_names - 1; i >= 0; i--)
        if (g.name_ptrs[i] == name) return i;
    for (int i = 0; i < g.n_names; i++)
        if (strcmp(g.names[i], name) == 0) return i;
    if (!ig_grow((void **)&g.names, &g.cap_names, g.n_names + 1, sizeof(char *)) ||
        !ig_grow((void **)&g.name_ptrs, &g.cap_name_ptrs, g.n_names + 1, sizeof(char *)))
        return -1;
    char *copy = strdup(name);
    if (!copy) return -1;
    g.names[g.n_names] = copy;
    g.name_ptrs[g.n_names] = name;
    return g.n_names++;
}

static void add_act(int kind, uint64_t start, uint64_t end, uint32_t correlation, int name)
{
    if (!ig_grow((void **)&g.acts, &g.cap_acts, g.n_acts + 1, sizeof(ig_act)) ||
        !ig_grow((void **)&g.act_corr, &g.cap_act_corr, g.n_acts + 1, sizeof(uint32_t))) {
        g.oom = 1;
        return;
    }
    g.acts[g.n_acts] = (ig_act){start, end, -1, name, kind};
    g.act_corr[g.n_acts] = correlation;
    g.n_acts++;
}

static void CUPTIAPI buffer_requested(uint8_t **buffer, size_t *size, size_t *max_records)
{
    /* CUPTI wants 8-byte alignment */
    *buffer = aligned_alloc(8, g_buf_bytes);
    *size = *buffer ? g_buf_bytes : 0;
    *max_records = 0;
}

static void parse(CUpti_Activity *r)
{
    switch (r->kind) {
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
    case CUPTI_ACTIVITY_KIND_KERNEL: {
        const CUpti_ActivityKernel10 *k = (const CUpti_ActivityKernel10 *)r;
        add_act(IG_ACT_KERNEL, k->start, k->end, k->correlationId, name_index(k->name));
        break;
    }
    case CUPTI_ACTIVITY_KIND_MEMCPY: {
        const CUpti_ActivityMemcpy6 *m = (const CUpti_ActivityMemcpy6 *)r;
        add_act(IG_ACT_MEMCPY, m->start, m->end, m->correlationId, -1);
        break;
    }
    case CUPTI_ACTIVITY_KIND_MEMSET: {
        const CUpti_ActivityMemset4 *m = (const CUpti_ActivityMemset4 *)r;
        add_act(IG_ACT_MEMSET, m->start, m->end, m->correlationId, -1);
        break;
    }
    case CUPTI_ACTIVITY_KIND_OVERHEAD: {
        const CUpti_ActivityOverhead3 *o = (const CUpti_ActivityOverhead3 *)r;
        if (o->end > o->start) g.overhead_ns += o->end - o->start;
        break;
    }
    case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION: {
        const CUpti_ActivityExternalCorrelation *x = (const CUpti_ActivityExternalCorrelation *)r;
        if (x->externalKind != CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0) break;
        if (!ig_grow((void **)&g.corrs, &g.cap_corrs, g.n_corrs + 1, sizeof(corr))) {
            g.oom = 1;
            break;
        }
        g.corrs[g.n_corrs++] = (corr){x->correlationId, x->externalId};
        break;
    }
    default: /* RUNTIME records only carry the external correlation */
        break;
    }
}

static void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size, size_t valid)
{
    (void)size;
    pthread_mutex_lock(&g_mu);
    CUpti_Activity *r = NULL;
    while (cuptiActivityGetNextRecord(buffer, valid, &r) == CUPTI_SUCCESS)
        parse(r);
    size_t dropped = 0;
    if (cuptiActivityGetNumDroppedRecords(ctx, stream, &dropped) == CUPTI_SUCCESS) g.dropped += dropped;
    pthread_mutex_unlock(&g_mu);
    free(buffer);
}

#define CUPTI_TRY(call)                                                                                                \
    do {                                                                                                               \
        CUptiResult r_ = (call);                                                                                       \
        if (r_ != CUPTI_SUCCESS) {                                                                                     \
            const char *m_ = "?";                                                                                      \
            cuptiGetResultString(r_, &m_);                                                                             \
            return ig_err(IGNIS_E_DEVICE, "CUPTI: %s failed: %s", #call, m_);                                          \
        }                                                                                                              \
    } while (0)

static const CUpti_ActivityKind k_kinds[] = {
    CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,  CUPTI_ACTIVITY_KIND_MEMSET,
    CUPTI_ACTIVITY_KIND_OVERHEAD,          CUPTI_ACTIVITY_KIND_RUNTIME, CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION};
#define N_KINDS (sizeof k_kinds / sizeof k_kinds[0])

static ignis_status init_once(void)
{
    /* the device-side record buffer: sized before any context, so no step waits on a
     * mid-window reallocation (32 MiB holds ~200k kernel records) */
    size_t dev_bytes = (size_t)32 << 20, sz = sizeof dev_bytes;
    CUptiResult r = cuptiActivitySetAttribute(CUPTI_ACTIVITY_ATTR_DEVICE_BUFFER_SIZE, &sz, &dev_bytes);
    if (r != CUPTI_SUCCESS) {
        /* a context made earlier keeps CUPTI's default buffer: records still come, a long
         * window may drop some (reported as dropped) */
        const char *m = "?";
        cuptiGetResultString(r, &m);
        ig_log(IGNIS_LOG_WARN, "CUPTI: device buffer size not set (%s); a CUDA context existed already?", m);
    }
    CUPTI_TRY(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed));
    return IGNIS_OK;
}

ignis_status ig_cupti_init(size_t buffer_bytes)
{
    /* once per process; a failure is remembered and repeated to later callers */
    static ignis_status st;
    static char msg[256];
    pthread_mutex_lock(&g_mu);
    if (!g_inited) {
        g_buf_bytes = buffer_bytes ? buffer_bytes : (size_t)8 << 20;
        st = init_once();
        snprintf(msg, sizeof msg, "%s", st == IGNIS_OK ? "" : ignis_last_error());
        g_inited = 1;
    }
    pthread_mutex_unlock(&g_mu);
    return st == IGNIS_OK ? IGNIS_OK : ig_err(st, "%s", msg);
}

ignis_status ig_cupti_enable(void)
{
    for (size_t i = 0; i < N_KINDS; i++)
        CUPTI_TRY(cuptiActivityEnable(k_kinds[i]));
    return IGNIS_OK;
}

ignis_status ig_cupti_disable(void)
{
    for (size_t i = 0; i < N_KINDS; i++)
        CUPTI_TRY(cuptiActivityDisable(k_kinds[i]));
    CUPTI_TRY(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED));
    return IGNIS_OK;
}

uint64_t ig_cupti_now_ns(void)
{
    uint64_t t = 0;
    cuptiGetTimestamp(&t);
    return t;
}

void ig_cupti_push_step(uint64_t step)
{
    cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, step);
}

void ig_cupti_pop_step(void)
{
    uint64_t last = 0;
    cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &last);
}

static int corr_cmp(const void *x, const void *y)
{
    const corr *p = x, *q = y;
    return p->corr < q->corr ? -1 : p->corr > q->corr ? 1 : 0;
}

void ig_cupti_reset(void)
{
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < g.n_names; i++)
        free(g.names[i]);
    free(g.acts);
    free(g.act_corr);
    free(g.names);
    free(g.name_ptrs);
    free(g.corrs);
    memset(&g, 0, sizeof g);
    pthread_mutex_unlock(&g_mu);
}

void ig_cupti_take(ig_cupti_data *out)
{
    pthread_mutex_lock(&g_mu);
    qsort(g.corrs, (size_t)g.n_corrs, sizeof(corr), corr_cmp);
    for (int i = 0; i < g.n_acts; i++) {
        corr key = {g.act_corr[i], 0};
        const corr *c = g.n_corrs ? bsearch(&key, g.corrs, (size_t)g.n_corrs, sizeof(corr), corr_cmp) : NULL;
        g.acts[i].step = c ? (int64_t)c->ext : -1;
    }
    out->acts = g.acts;
    out->n_acts = g.n_acts;
    out->names = g.names;
    out->n_names = g.n_names;
    out->dropped = g.dropped + (g.oom ? 1 : 0);
    out->overhead_ns = g.overhead_ns;
    free(g.act_corr);
    free(g.name_ptrs);
    free(g.corrs);
    memset(&g, 0, sizeof g);
    pthread_mutex_unlock(&g_mu);
}

#else /* built without CUPTI */

ignis_status ig_cupti_init(size_t buffer_bytes)
{
    (void)buffer_bytes;
    return ig_err(IGNIS_E_UNSUPPORTED, "kernel timings need CUPTI, and ignis was built without CUDA/CUPTI");
}
ignis_status ig_cupti_enable(void) { return ig_err(IGNIS_E_UNSUPPORTED, "built without CUPTI"); }
ignis_status ig_cupti_disable(void) { return IGNIS_OK; }
uint64_t ig_cupti_now_ns(void) { return 0; }
void ig_cupti_push_step(uint64_t step) { (void)step; }
void ig_cupti_pop_step(void) {}
void ig_cupti_take(ig_cupti_data *out) { memset(out, 0, sizeof *out); }
void ig_cupti_reset(void) {}

#endif

void ig_cupti_data_free(ig_cupti_data *d)
{
    for (int i = 0; i < d->n_names; i++)
        free(d->names[i]);
    free(d->names);
    free(d->acts);
    memset(d, 0, sizeof *d);
}
