/*
 * A tenant on the fake device: launches batches of kernels of a known duration, keeps one batch queued
 * ahead and waits for the previous one (an event per batch, as a training loop's step does), and counts
 * the device time it got per window of wall time. With gap_us > 0 it instead synchronizes after each
 * batch and then spends gap_us on the host (a serving loop with think time).
 *
 * usage: tenant cuda|acl key=value...
 *   device=N          device ordinal (default 0)
 *   epoch=NS          CLOCK_MONOTONIC start shared by all tenants of a run (default: now)
 *   seconds=S         run until epoch + S (default 2)
 *   kernel_us=US      device time of one kernel (default 250)
 *   batch=N           kernels per synchronize (default 4)
 *   gap_us=US         host time between batches (default 0: saturate the device)
 *   kind=K            kernel | ex | coop | graph | multi (two streams) (CUDA; default kernel); on ACL,
 *                     hostargs launches with rtsLaunchKernelWithHostArgs (aclnn's path) instead;
 *                     with gap_us, copy ends each batch with a synchronous cuMemcpyDtoH_v2 instead of
 *                     a synchronize, and query waits for it by polling cuEventQuery
 *   window_ms=MS      window length (default 1000)
 * Output: "window i=<n> busy_ns=<ns> batches=<n>" per window, then "total busy_ns=<ns> batches=<n>".
 * CUDA functions are resolved through cuGetProcAddress, as PyTorch does.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_WINDOWS 600

typedef int (*gpa_fn)(const char *, void **, int, unsigned long long, int *);

struct launch_config {
    unsigned gx, gy, gz, bx, by, bz, shm;
    void *stream;
    void *attrs;
    unsigned nattrs;
};

static struct {
    int (*init)(unsigned);
    int (*ctx_create)(void **, unsigned, int);
    int (*stream_create)(void **, unsigned);
    int (*launch)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void *, void **,
                  void **);
    int (*launch_ex)(const struct launch_config *, void *, void **, void **);
    int (*coop)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void *, void **);
    int (*graph)(void *, void *);
    int (*stream_sync)(void *);
    int (*ctx_sync)(void);
    int (*rt_set_device)(int32_t);
    int (*rt_launch)(const void *, uint32_t, void *, uint32_t, void *, void *);
    int (*rts_launch_host)(void *, uint32_t, void *, void *, void *, uint32_t, void *, uint32_t);
    int (*rt_stream_create)(void **, int32_t);
    int (*rt_stream_sync)(void *);
    int (*event_create)(void **, unsigned);
    int (*event_record)(void *, void *);
    int (*event_sync)(void *);
    int (*event_query)(void *);
    int (*copy_dtoh)(void *, unsigned long long, size_t);
    int (*rt_event_create)(void **);
    int (*rt_event_record)(void *, void *);
    int (*rt_event_sync)(void *);
} api;

static long opt(int argc, char **argv, const char *key, long fallback) {
    size_t n = strlen(key);
    for (int i = 2; i < argc; i++)
        if (strncmp(argv[i], key, n) == 0 && argv[i][n] == '=')
            return (long)(strcmp(key, "seconds") == 0 ? atof(argv[i] + n + 1) * 1000 : atol(argv[i] + n + 1));
    return fallback;
}

static const char *opt_text(int argc, char **argv, const char *key, const char *fallback) {
    size_t n = strlen(key);
    for (int i = 2; i < argc; i++)
        if (strncmp(argv[i], key, n) == 0 && argv[i][n] == '=')
            return argv[i] + n + 1;
    return fallback;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t deadline) {
    uint64_t now;
    while ((now = now_ns()) < deadline) {
        struct timespec ts = {0, (long)(deadline - now)};
        nanosleep(&ts, NULL);
    }
}

static int bind_cuda(int device, void **streams) {
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    gpa_fn gpa = lib ? (gpa_fn)dlsym(lib, "cuGetProcAddress_v2") : NULL;
    if (gpa == NULL)
        return -1;
#define GET(field, name) gpa(name, (void **)&api.field, 12040, 0, NULL)
    GET(init, "cuInit");
    GET(ctx_create, "cuCtxCreate");
    GET(stream_create, "cuStreamCreate");
    GET(launch, "cuLaunchKernel");
    GET(launch_ex, "cuLaunchKernelEx");
    GET(coop, "cuLaunchCooperativeKernel");
    GET(graph, "cuGraphLaunch");
    GET(stream_sync, "cuStreamSynchronize");
    GET(ctx_sync, "cuCtxSynchronize");
    GET(event_create, "cuEventCreate");
    GET(event_record, "cuEventRecord");
    GET(event_sync, "cuEventSynchronize");
    GET(event_query, "cuEventQuery");
    GET(copy_dtoh, "cuMemcpyDtoH");
    void *ctx = NULL;
    if (api.init == NULL || api.init(0) != 0 || api.ctx_create(&ctx, 0, device) != 0)
        return -1;
    return api.stream_create(&streams[0], 0) | api.stream_create(&streams[1], 0);
}

static int bind_acl(int device, void **streams) {
    void *rt = dlopen("libruntime.so", RTLD_NOW | RTLD_LOCAL);
    if (rt == NULL)
        return -1;
    *(void **)&api.rt_set_device = dlsym(rt, "rtSetDevice");
    *(void **)&api.rt_launch = dlsym(rt, "rtKernelLaunch");
    *(void **)&api.rts_launch_host = dlsym(rt, "rtsLaunchKernelWithHostArgs");
    *(void **)&api.rt_stream_create = dlsym(rt, "rtStreamCreate");
    *(void **)&api.rt_stream_sync = dlsym(rt, "rtStreamSynchronize");
    *(void **)&api.rt_event_create = dlsym(rt, "rtEventCreate");
    *(void **)&api.rt_event_record = dlsym(rt, "rtEventRecord");
    *(void **)&api.rt_event_sync = dlsym(rt, "rtEventSynchronize");
    if (api.rt_set_device == NULL || api.rt_set_device(device) != 0)
        return -1;
    streams[1] = NULL;
    return api.rt_stream_create(&streams[0], 0);
}

/* One batch: `batch` kernels of `ns` each. */
static int launch_batch(int acl, const char *kind, void **streams, long batch, unsigned ns) {
    int rc = 0;
    for (long k = 0; k < batch; k++) {
        void *s = streams[strcmp(kind, "multi") == 0 ? k % 2 : 0];
        if (acl && strcmp(kind, "hostargs") == 0) { /* how aclnn operators launch */
            rc |= api.rts_launch_host(NULL, ns, s, NULL, NULL, 0, NULL, 0);
        } else if (acl) {
            rc |= api.rt_launch(NULL, ns, NULL, 0, NULL, s);
        } else if (strcmp(kind, "ex") == 0) {
            struct launch_config cfg = {.gx = ns, .gy = 1, .gz = 1, .bx = 1, .by = 1, .bz = 1, .stream = s};
            rc |= api.launch_ex(&cfg, NULL, NULL, NULL);
        } else if (strcmp(kind, "coop") == 0) {
            rc |= api.coop(NULL, ns, 1, 1, 1, 1, 1, 0, s, NULL);
        } else if (strcmp(kind, "graph") == 0) {
            rc |= api.graph((void *)(uintptr_t)ns, s);
        } else {
            rc |= api.launch(NULL, ns, 1, 1, 1, 1, 1, 0, s, NULL, NULL);
        }
    }
    return rc;
}

/* Wait until the stream's work is done by polling its event: no synchronize the shim could see. */
static int poll_done(void *stream, void *event) {
    int rc = api.event_record(event, stream);
    if (rc != 0)
        return rc;
    while ((rc = api.event_query(event)) == 600) { /* CUDA_ERROR_NOT_READY */
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    return rc;
}

static int sync_all(int acl, const char *kind, void **streams, void *event) {
    static char host[64];
    if (acl)
        return api.rt_stream_sync(streams[0]);
    if (strcmp(kind, "copy") == 0) /* a legacy-stream copy waits for the work queued before it */
        return api.copy_dtoh(host, 0, sizeof(host));
    if (strcmp(kind, "query") == 0)
        return poll_done(streams[0], event);
    return strcmp(kind, "multi") == 0 ? api.ctx_sync() : api.stream_sync(streams[0]);
}

/* The batch's end on the stream it finished on (multi: the context, through both streams). */
static int mark(int acl, const char *kind, void **streams, void *event) {
    if (acl)
        return api.rt_event_record(event, streams[0]);
    if (strcmp(kind, "multi") == 0)
        return api.ctx_sync();
    return api.event_record(event, streams[0]);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        return 2;
    int acl = strcmp(argv[1], "acl") == 0;
    void *streams[2] = {NULL, NULL};
    if ((acl ? bind_acl : bind_cuda)((int)opt(argc, argv, "device", 0), streams) != 0) {
        printf("init failed\n");
        return 3;
    }
    uint64_t epoch = (uint64_t)opt(argc, argv, "epoch", 0);
    uint64_t window = (uint64_t)opt(argc, argv, "window_ms", 1000) * 1000000ull;
    epoch = epoch ? epoch : now_ns();
    uint64_t end = epoch + (uint64_t)opt(argc, argv, "seconds", 2000) * 1000000ull; /* in ms */
    unsigned ns = (unsigned)(opt(argc, argv, "kernel_us", 250) * 1000);
    long batch = opt(argc, argv, "batch", 4), gap = opt(argc, argv, "gap_us", 0);
    const char *kind = opt_text(argc, argv, "kind", "kernel");
    static uint64_t busy[MAX_WINDOWS], batches[MAX_WINDOWS];
    void *events[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++)
        if ((acl ? api.rt_event_create(&events[i]) : api.event_create(&events[i], 0)) != 0)
            return 3;
    sleep_until(epoch);
    int queued = 0;
    for (long n = 0; now_ns() < end; n++) {
        int rc = launch_batch(acl, kind, streams, batch, ns);
        if (gap > 0) {
            rc |= sync_all(acl, kind, streams, events[0]);
        } else {
            rc |= mark(acl, kind, streams, events[n % 2]);
            if (queued++) /* wait for the previous batch: one stays queued ahead */
                rc |= acl ? api.rt_event_sync(events[(n + 1) % 2]) : api.event_sync(events[(n + 1) % 2]);
        }
        if (rc != 0) {
            printf("launch failed\n");
            return 4;
        }
        uint64_t w = (now_ns() - epoch) / window;
        if (w < MAX_WINDOWS && (gap > 0 || queued > 1))
            busy[w] += (uint64_t)batch * ns, batches[w]++;
        if (gap > 0)
            sleep_until(now_ns() + (uint64_t)gap * 1000ull);
    }
    sync_all(acl, kind, streams, events[0]);
    uint64_t total = 0, count = 0, windows = (end - epoch + window - 1) / window;
    for (uint64_t w = 0; w < windows && w < MAX_WINDOWS; w++) {
        printf("window i=%llu busy_ns=%llu batches=%llu\n", (unsigned long long)w, (unsigned long long)busy[w],
               (unsigned long long)batches[w]);
        total += busy[w], count += batches[w];
    }
    printf("total busy_ns=%llu batches=%llu\n", (unsigned long long)total, (unsigned long long)count);
    return 0;
}
