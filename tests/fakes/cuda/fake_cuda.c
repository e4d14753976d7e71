/*
 * A fake libcuda.so.1: device memory with a capacity and a device timeline shared by every process
 * through a state file, so the shim can be preloaded into real processes and checked from outside.
 *
 * Environment: FAKE_CUDA_STATE (path of the shared state file; created on first use), FAKE_CUDA_DEVICES
 * (count, default 1, at most 8), FAKE_CUDA_MEMORY (bytes per device, default 1 GiB). The state file
 * holds per device the bytes allocated now, their high-water mark, the timeline's end and the launch
 * count (layout: struct fake_state below).
 *
 * The device timeline models a time-sliced device: kernels of every process serialize on it. A kernel
 * (gridX*gridY*gridZ ns of device time; a graph launch: the graph handle's value in ns) reserves the
 * interval [max(now, busy_until), +duration] with one compare-and-swap, and its end is recorded on its
 * stream. Events take the stream's end when recorded and are complete once CLOCK_MONOTONIC passes it,
 * so cuEventQuery/cuEventElapsedTime/cuEventSynchronize and stream/context synchronization behave as on a
 * real device. A stream holds at most FAKE_CUDA_QUEUE_US (default 20000) of queued work; a launch past
 * that waits, as a real launch waits for room in the push buffer. FAKE_CUDA_LAUNCH_NS (default 0) spins
 * that long in every launch, the host cost of a real driver's launch, for launch-bound benchmarks.
 * Streams 0, 1 (legacy) and 2 (per thread) are the calling thread's default stream.
 *
 * Build with -Wl,-Bsymbolic so the table cuGetProcAddress answers from holds this library's own
 * functions (as the real driver does), not whatever an interposer exports under the same name.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define MAX_DEVICES 8
#define CUDA_SUCCESS 0
#define CUDA_ERROR_INVALID_VALUE 1
#define CUDA_ERROR_OUT_OF_MEMORY 2
#define CUDA_ERROR_NOT_INITIALIZED 3
#define CUDA_ERROR_INVALID_DEVICE 101
#define CUDA_ERROR_INVALID_CONTEXT 201
#define CUDA_ERROR_NOT_FOUND 500
#define CUDA_ERROR_NOT_READY 600
#define PER_THREAD_STREAM 2ull

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

struct fake_state {
    uint64_t magic;
    uint64_t allocated[MAX_DEVICES];
    uint64_t peak[MAX_DEVICES];
    uint64_t busy_until_ns[MAX_DEVICES];
    uint64_t launches[MAX_DEVICES];
};

/* A device allocation is a small host block describing it; its address is the device pointer. */
struct block {
    uint64_t size;
    int dev;
    int kind;
};

static struct fake_state *state;
static struct fake_state private_state;
static int device_count = 1;
static uint64_t capacity = 1ull << 30;
static __thread int current = -1;
static uint64_t queue_limit_ns = 20000000ull;
static uint64_t launch_cost_ns;
static uint64_t process_last_end;

struct fake_stream {
    uint64_t last_end;
};
static __thread struct fake_stream thread_stream;

struct fake_event {
    uint64_t time;
    int recorded;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct fake_state *map_state(const char *path) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return NULL;
    flock(fd, LOCK_EX);
    if (lseek(fd, 0, SEEK_END) < (off_t)sizeof(struct fake_state))
        if (ftruncate(fd, sizeof(struct fake_state)) != 0) {
            close(fd);
            return NULL;
        }
    flock(fd, LOCK_UN);
    void *p = mmap(NULL, sizeof(struct fake_state), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

EXPORT CUresult cuInit(unsigned int flags) {
    (void)flags;
    const char *v = getenv("FAKE_CUDA_DEVICES");
    if (v != NULL)
        device_count = atoi(v) < 1 ? 1 : (atoi(v) > MAX_DEVICES ? MAX_DEVICES : atoi(v));
    if ((v = getenv("FAKE_CUDA_MEMORY")) != NULL)
        capacity = strtoull(v, NULL, 10);
    if ((v = getenv("FAKE_CUDA_QUEUE_US")) != NULL)
        queue_limit_ns = strtoull(v, NULL, 10) * 1000ull;
    if ((v = getenv("FAKE_CUDA_LAUNCH_NS")) != NULL)
        launch_cost_ns = strtoull(v, NULL, 10);
    const char *path = getenv("FAKE_CUDA_STATE");
    struct fake_state *s = path ? map_state(path) : NULL;
    __atomic_store_n(&state, s ? s : &private_state, __ATOMIC_RELEASE);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDriverGetVersion(int *version) {
    *version = 12040;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetCount(int *count) {
    if (state == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    *count = device_count;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGet(int *device, int ordinal) {
    if (ordinal < 0 || ordinal >= device_count)
        return CUDA_ERROR_INVALID_DEVICE;
    *device = ordinal;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, int dev) {
    if (dev < 0 || dev >= device_count)
        return CUDA_ERROR_INVALID_DEVICE;
    *bytes = capacity;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxCreate_v2(void **ctx, unsigned int flags, int dev) {
    (void)flags;
    if (state == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (dev < 0 || dev >= device_count)
        return CUDA_ERROR_INVALID_DEVICE;
    current = dev;
    *ctx = (void *)(uintptr_t)(dev + 1);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxSetCurrent(void *ctx) {
    current = (int)(uintptr_t)ctx - 1;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxGetDevice(int *dev) {
    if (current < 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    *dev = current;
    return CUDA_SUCCESS;
}

static CUresult take(int dev, uint64_t size, int kind, unsigned long long *out) {
    if (state == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (dev < 0 || dev >= device_count)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (size == 0)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t used = __atomic_load_n(&state->allocated[dev], __ATOMIC_RELAXED);
    do {
        if (size > capacity || used > capacity - size)
            return CUDA_ERROR_OUT_OF_MEMORY;
    } while (!__atomic_compare_exchange_n(&state->allocated[dev], &used, used + size, 1, __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
    uint64_t peak = __atomic_load_n(&state->peak[dev], __ATOMIC_RELAXED);
    while (used + size > peak && !__atomic_compare_exchange_n(&state->peak[dev], &peak, used + size, 1,
                                                              __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    struct block *b = malloc(sizeof(*b));
    *b = (struct block){.size = size, .dev = dev, .kind = kind};
    *out = (unsigned long long)(uintptr_t)b;
    return CUDA_SUCCESS;
}

static CUresult give(uint64_t handle, int kind) {
    struct block *b = (struct block *)(uintptr_t)handle;
    if (b == NULL || b->kind != kind)
        return CUDA_ERROR_INVALID_VALUE;
    __atomic_sub_fetch(&state->allocated[b->dev], b->size, __ATOMIC_ACQ_REL);
    b->kind = -1;
    free(b);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t size) { return take(current, size, 1, dptr); }
EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t size, unsigned int flags) {
    (void)flags;
    return take(current, size, 1, dptr);
}
EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t size, void *stream) {
    (void)stream;
    return take(current, size, 1, dptr);
}
EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t size, void *stream) {
    return cuMemAllocAsync(dptr, size, stream);
}
EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t size, void *pool, void *stream) {
    (void)pool;
    return cuMemAllocAsync(dptr, size, stream);
}
EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t size, void *pool, void *stream) {
    return cuMemAllocFromPoolAsync(dptr, size, pool, stream);
}
EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height,
                                   unsigned int element) {
    (void)element;
    *pitch = (width + 511) / 512 * 512;
    return take(current, *pitch * height, 1, dptr);
}
EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) { return give(dptr, 1); }
EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, void *stream) {
    (void)stream;
    return give(dptr, 1);
}
EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, void *stream) { return cuMemFreeAsync(dptr, stream); }

struct mem_prop {
    int type, handle_types, location_type, location_id;
};
EXPORT CUresult cuMemCreate(unsigned long long *handle, size_t size, const struct mem_prop *prop,
                            unsigned long long flags) {
    (void)flags;
    if (prop == NULL || prop->location_type != 1)
        return CUDA_ERROR_INVALID_VALUE;
    return take(prop->location_id, size, 2, handle);
}
EXPORT CUresult cuMemRelease(unsigned long long handle) { return give(handle, 2); }

EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes) {
    if (current < 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    uint64_t used = __atomic_load_n(&state->allocated[current], __ATOMIC_RELAXED);
    *free_bytes = used < capacity ? capacity - used : 0;
    *total_bytes = capacity;
    return CUDA_SUCCESS;
}

static struct fake_stream *stream_of(void *stream) {
    return (uintptr_t)stream <= 2 ? &thread_stream : (struct fake_stream *)stream;
}

/* Sleep, then yield for the last stretch: a synchronize returns close to the work's end, as a driver's
 * spin-then-block wait does. */
static void sleep_until(uint64_t deadline) {
    uint64_t now;
    while ((now = now_ns()) < deadline) {
        if (deadline - now > 150000) {
            struct timespec ts = {0, (long)(deadline - now - 100000)};
            nanosleep(&ts, NULL);
        } else {
            sched_yield();
        }
    }
}

/* Queue `duration` ns of work on the current device behind everyone else's. */
static CUresult occupy(uint64_t duration, void *stream) {
    if (current < 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    struct fake_stream *s = stream_of(stream);
    if (s->last_end > now_ns() + queue_limit_ns)
        sleep_until(s->last_end - queue_limit_ns);
    uint64_t now = now_ns(), end;
    if (launch_cost_ns) /* the host-side cost of a real driver's launch */
        for (uint64_t until = now + launch_cost_ns; (now = now_ns()) < until;)
            ;
    uint64_t busy = __atomic_load_n(&state->busy_until_ns[current], __ATOMIC_RELAXED);
    do {
        end = (busy > now ? busy : now) + duration;
    } while (!__atomic_compare_exchange_n(&state->busy_until_ns[current], &busy, end, 1, __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
    __atomic_add_fetch(&state->launches[current], 1, __ATOMIC_RELAXED);
    __atomic_store_n(&s->last_end, end, __ATOMIC_RELEASE);
    uint64_t last = __atomic_load_n(&process_last_end, __ATOMIC_RELAXED);
    while (last < end && !__atomic_compare_exchange_n(&process_last_end, &last, end, 1, __ATOMIC_RELAXED,
                                                      __ATOMIC_RELAXED))
        ;
    return CUDA_SUCCESS;
}

#define KERNEL_PARAMS                                                                                    \
    void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shm, \
        void *stream
#define UNUSED_KERNEL (void)f, (void)bx, (void)by, (void)bz, (void)shm

EXPORT CUresult cuLaunchKernel(KERNEL_PARAMS, void **params, void **extra) {
    UNUSED_KERNEL, (void)params, (void)extra;
    return occupy((uint64_t)gx * gy * gz, stream);
}
EXPORT CUresult cuLaunchKernel_ptsz(KERNEL_PARAMS, void **params, void **extra) {
    return cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shm, stream, params, extra);
}
EXPORT CUresult cuLaunchCooperativeKernel(KERNEL_PARAMS, void **params) {
    UNUSED_KERNEL, (void)params;
    return occupy((uint64_t)gx * gy * gz, stream);
}
EXPORT CUresult cuLaunchCooperativeKernel_ptsz(KERNEL_PARAMS, void **params) {
    return cuLaunchCooperativeKernel(f, gx, gy, gz, bx, by, bz, shm, stream, params);
}
/* CUlaunchConfig's layout. */
struct launch_config {
    unsigned gx, gy, gz, bx, by, bz, shm;
    void *stream;
    void *attrs;
    unsigned nattrs;
};
EXPORT CUresult cuLaunchKernelEx(const struct launch_config *cfg, void *f, void **params, void **extra) {
    (void)f, (void)params, (void)extra;
    if (cfg == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    return occupy((uint64_t)cfg->gx * cfg->gy * cfg->gz, cfg->stream);
}
EXPORT CUresult cuLaunchKernelEx_ptsz(const struct launch_config *cfg, void *f, void **params, void **extra) {
    return cuLaunchKernelEx(cfg, f, params, extra);
}
EXPORT CUresult cuGraphLaunch(void *graph, void *stream) {
    return occupy((uint64_t)(uintptr_t)graph, stream);
}
EXPORT CUresult cuGraphLaunch_ptsz(void *graph, void *stream) { return cuGraphLaunch(graph, stream); }

EXPORT CUresult cuStreamCreate(void **stream, unsigned flags) {
    (void)flags;
    if (stream == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *stream = calloc(1, sizeof(struct fake_stream));
    return CUDA_SUCCESS;
}
EXPORT CUresult cuStreamDestroy_v2(void *stream) {
    if ((uintptr_t)stream > 2)
        free(stream);
    return CUDA_SUCCESS;
}
EXPORT CUresult cuCtxSynchronize(void) {
    sleep_until(__atomic_load_n(&process_last_end, __ATOMIC_ACQUIRE));
    return CUDA_SUCCESS;
}
EXPORT CUresult cuStreamSynchronize(void *stream) {
    sleep_until(__atomic_load_n(&stream_of(stream)->last_end, __ATOMIC_ACQUIRE));
    return CUDA_SUCCESS;
}
EXPORT CUresult cuStreamSynchronize_ptsz(void *stream) { return cuStreamSynchronize(stream); }

EXPORT CUresult cuEventCreate(void **event, unsigned flags) {
    (void)flags;
    if (event == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *event = calloc(1, sizeof(struct fake_event));
    return CUDA_SUCCESS;
}
EXPORT CUresult cuEventDestroy_v2(void *event) {
    free(event);
    return CUDA_SUCCESS;
}
EXPORT CUresult cuEventRecord(void *event, void *stream) {
    struct fake_event *e = event;
    if (e == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t now = now_ns(), end = __atomic_load_n(&stream_of(stream)->last_end, __ATOMIC_ACQUIRE);
    e->time = end > now ? end : now;
    e->recorded = 1;
    return CUDA_SUCCESS;
}
EXPORT CUresult cuEventRecord_ptsz(void *event, void *stream) { return cuEventRecord(event, stream); }
EXPORT CUresult cuEventQuery(void *event) {
    struct fake_event *e = event;
    if (e == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    return !e->recorded || now_ns() >= e->time ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}
EXPORT CUresult cuEventSynchronize(void *event) {
    struct fake_event *e = event;
    if (e == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    sleep_until(e->time);
    return CUDA_SUCCESS;
}
EXPORT CUresult cuEventElapsedTime(float *ms, void *start, void *end) {
    struct fake_event *a = start, *b = end;
    if (ms == NULL || a == NULL || b == NULL || !a->recorded || !b->recorded)
        return CUDA_ERROR_INVALID_VALUE;
    if (cuEventQuery(a) != CUDA_SUCCESS || cuEventQuery(b) != CUDA_SUCCESS)
        return CUDA_ERROR_NOT_READY;
    *ms = (float)(((double)b->time - (double)a->time) / 1e6);
    return CUDA_SUCCESS;
}

/* What cuGetProcAddress answers from: base names, resolved to the newest variant the caller may use. */
struct proc {
    const char *name;
    void *fn;
};
#define P(n) {#n, (void *)n}
static const struct proc procs[] = {
    P(cuInit), P(cuDriverGetVersion), P(cuDeviceGetCount), P(cuDeviceGet), P(cuDeviceTotalMem_v2),
    P(cuCtxCreate_v2), P(cuCtxSetCurrent), P(cuCtxGetDevice), P(cuMemAlloc_v2), P(cuMemAllocManaged),
    P(cuMemAllocAsync), P(cuMemAllocAsync_ptsz), P(cuMemAllocFromPoolAsync), P(cuMemAllocFromPoolAsync_ptsz),
    P(cuMemAllocPitch_v2), P(cuMemFree_v2), P(cuMemFreeAsync), P(cuMemFreeAsync_ptsz), P(cuMemCreate),
    P(cuMemRelease), P(cuMemGetInfo_v2), P(cuLaunchKernel), P(cuLaunchKernel_ptsz), P(cuLaunchKernelEx),
    P(cuLaunchKernelEx_ptsz), P(cuLaunchCooperativeKernel), P(cuLaunchCooperativeKernel_ptsz), P(cuGraphLaunch),
    P(cuGraphLaunch_ptsz), P(cuCtxSynchronize), P(cuStreamSynchronize), P(cuStreamSynchronize_ptsz),
    P(cuStreamCreate), P(cuStreamDestroy_v2), P(cuEventCreate), P(cuEventDestroy_v2), P(cuEventRecord),
    P(cuEventRecord_ptsz), P(cuEventQuery), P(cuEventSynchronize), P(cuEventElapsedTime),
};

static void *find_proc(const char *name) {
    for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++)
        if (strcmp(procs[i].name, name) == 0)
            return procs[i].fn;
    return NULL;
}

EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, unsigned long long flags,
                                    int *status);

EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, unsigned long long flags) {
    char name[128];
    void *fn = NULL;
    if (symbol == NULL || pfn == NULL || strlen(symbol) > 100)
        return CUDA_ERROR_INVALID_VALUE;
    if (strcmp(symbol, "cuGetProcAddress") == 0) {
        fn = version >= 12000 ? (void *)cuGetProcAddress_v2 : (void *)cuGetProcAddress;
    } else {
        if (flags & PER_THREAD_STREAM) {
            snprintf(name, sizeof(name), "%s_ptsz", symbol);
            fn = find_proc(name);
        }
        if (fn == NULL && version >= 3020) {
            snprintf(name, sizeof(name), "%s_v2", symbol);
            fn = find_proc(name);
        }
        if (fn == NULL)
            fn = find_proc(symbol);
    }
    *pfn = fn;
    return fn ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, unsigned long long flags,
                                    int *status) {
    CUresult rc = cuGetProcAddress(symbol, pfn, version, flags);
    if (status != NULL)
        *status = rc == CUDA_SUCCESS ? 0 : 1;
    return rc;
}
