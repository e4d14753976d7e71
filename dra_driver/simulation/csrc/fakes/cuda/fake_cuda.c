/*
 * A fake libcuda.so.1 on the simulated device of fakes/common/fake_device.h: device memory with a
 * capacity and a device timeline shared by every process through a state file, so the shim can be
 * preloaded into real processes and checked from outside. This file is the CUDA driver API surface.
 *
 * Environment: FAKE_CUDA_STATE (path of the shared state file; created on first use), FAKE_CUDA_DEVICES
 * (count, default 1, at most 8), FAKE_CUDA_MEMORY (bytes per device, default 1 GiB). A kernel
 * (gridX*gridY*gridZ ns of device time; a graph launch: the graph handle's value in ns) occupies the
 * shared device timeline, so cuEventQuery/cuEventElapsedTime/cuEventSynchronize and stream/context
 * synchronization behave as on a real device; the synchronous copies (cuMemcpy, cuMemcpyDtoH_v2,
 * cuMemcpyHtoD_v2, cuMemcpyDtoD_v2 and their _ptds variants) wait for the work queued before them. A
 * stream holds at most FAKE_CUDA_QUEUE_US (default 20000) of queued work; a launch past that waits, as a
 * real launch waits for room in the push buffer.
 * FAKE_CUDA_LAUNCH_NS (default 0) spins that long in every launch, the host cost of a real driver's
 * launch, for launch-bound benchmarks. Streams 0, 1 (legacy) and 2 (per thread) are the calling thread's
 * default stream.
 *
 * Build with -I fakes/common and -Wl,-Bsymbolic, so the table cuGetProcAddress answers from holds
 * this library's own functions (as the real driver does), not whatever an interposer exports under the
 * same name.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))
#define CUDA_SUCCESS 0
#define CUDA_ERROR_INVALID_VALUE 1
#define CUDA_ERROR_OUT_OF_MEMORY 2
#define CUDA_ERROR_NOT_INITIALIZED 3
#define CUDA_ERROR_INVALID_DEVICE 101
#define CUDA_ERROR_INVALID_CONTEXT 201
#define CUDA_ERROR_NOT_FOUND 500
#define CUDA_ERROR_NOT_READY 600
#define CUDA_ERROR_NOT_SUPPORTED 801
#define CUDA_ERROR_ILLEGAL_STATE 401
#define CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED 900
#define CUDA_ERROR_STREAM_CAPTURE_INVALIDATED 901
#define CUDA_ERROR_CAPTURED_EVENT 907
#define PER_THREAD_STREAM 2ull

#define FAKE_SUCCESS CUDA_SUCCESS
#define FAKE_ERROR_NOT_INITIALIZED CUDA_ERROR_NOT_INITIALIZED
#define FAKE_ERROR_NO_CONTEXT CUDA_ERROR_INVALID_CONTEXT
#define FAKE_ERROR_INVALID_VALUE CUDA_ERROR_INVALID_VALUE
#define FAKE_ERROR_OUT_OF_MEMORY CUDA_ERROR_OUT_OF_MEMORY
#define FAKE_ERROR_BAD_FREE CUDA_ERROR_INVALID_VALUE
#define FAKE_ERROR_NOT_READY CUDA_ERROR_NOT_READY
#define FAKE_LAST_DEFAULT_STREAM 2u /* CU_STREAM_LEGACY is 1, CU_STREAM_PER_THREAD 2 */
#include "fake_device.h"

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

static __thread int current = -1;

EXPORT CUresult cuInit(unsigned int flags) {
    (void)flags;
    const char *v;
    if ((v = fake_env("CUDA", "QUEUE_US")) != NULL)
        fake.queue_limit_ns = strtoull(v, NULL, 10) * 1000ull;
    if ((v = fake_env("CUDA", "LAUNCH_NS")) != NULL)
        fake.launch_cost_ns = strtoull(v, NULL, 10);
    fake_load("CUDA");
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDriverGetVersion(int *version) {
    *version = 12040;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetCount(int *count) {
    if (fake.state == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    *count = fake.device_count;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGet(int *device, int ordinal) {
    if (!fake_device_valid(ordinal))
        return CUDA_ERROR_INVALID_DEVICE;
    *device = ordinal;
    return CUDA_SUCCESS;
}

/* FAKE_CUDA_UUIDS="GPU-...,GPU-..." gives the devices UUIDs, one per ordinal (as the driver reports
 * them after CUDA_VISIBLE_DEVICES reorders or narrows the devices); without it they have none. */
EXPORT CUresult cuDeviceGetUuid_v2(unsigned char *uuid, int dev) {
    const char *list = fake_env("CUDA", "UUIDS");
    if (list == NULL)
        return CUDA_ERROR_NOT_SUPPORTED;
    if (uuid == NULL || !fake_device_valid(dev))
        return CUDA_ERROR_INVALID_VALUE;
    for (int i = 0; i < dev && list != NULL; i++)
        list = (list = strchr(list, ',')) != NULL ? list + 1 : NULL;
    if (list == NULL || strncmp(list, "GPU-", 4) != 0)
        return CUDA_ERROR_INVALID_VALUE;
    int n = 0;
    for (const char *c = list + 4; *c != '\0' && *c != ',' && n < 32; c++) {
        if (*c == '-')
            continue;
        unsigned v;
        if (sscanf(c, "%1x", &v) != 1)
            return CUDA_ERROR_INVALID_VALUE;
        uuid[n / 2] = (unsigned char)(n % 2 ? (uuid[n / 2] | v) : v << 4);
        n++;
    }
    return n == 32 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
EXPORT CUresult cuDeviceGetUuid(unsigned char *uuid, int dev) { return cuDeviceGetUuid_v2(uuid, dev); }

EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, int dev) {
    if (!fake_device_valid(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    *bytes = fake.capacity;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxCreate_v2(void **ctx, unsigned int flags, int dev) {
    (void)flags;
    if (fake.state == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (!fake_device_valid(dev))
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
    uintptr_t handle = 0;
    CUresult rc = fake_take(dev, size, kind, &handle);
    if (rc == CUDA_SUCCESS)
        *out = handle;
    return rc;
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
EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) { return fake_give(dptr, 1); }
EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, void *stream) {
    (void)stream;
    return fake_give(dptr, 1);
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
EXPORT CUresult cuMemRelease(unsigned long long handle) { return fake_give(handle, 2); }

EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes) {
    return fake_mem_info(current, free_bytes, total_bytes);
}

#define KERNEL_PARAMS                                                                                    \
    void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shm, \
        void *stream
#define UNUSED_KERNEL (void)f, (void)bx, (void)by, (void)bz, (void)shm

EXPORT CUresult cuLaunchKernel(KERNEL_PARAMS, void **params, void **extra) {
    UNUSED_KERNEL, (void)params, (void)extra;
    return fake_occupy(current, (uint64_t)gx * gy * gz, stream);
}
EXPORT CUresult cuLaunchKernel_ptsz(KERNEL_PARAMS, void **params, void **extra) {
    return cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shm, stream, params, extra);
}
EXPORT CUresult cuLaunchCooperativeKernel(KERNEL_PARAMS, void **params) {
    UNUSED_KERNEL, (void)params;
    return fake_occupy(current, (uint64_t)gx * gy * gz, stream);
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
    return fake_occupy(current, (uint64_t)cfg->gx * cfg->gy * cfg->gz, cfg->stream);
}
EXPORT CUresult cuLaunchKernelEx_ptsz(const struct launch_config *cfg, void *f, void **params, void **extra) {
    return cuLaunchKernelEx(cfg, f, params, extra);
}
EXPORT CUresult cuGraphLaunch(void *graph, void *stream) {
    return fake_occupy(current, (uint64_t)(uintptr_t)graph, stream);
}
EXPORT CUresult cuGraphLaunch_ptsz(void *graph, void *stream) { return cuGraphLaunch(graph, stream); }

/*
 * Stream capture, in the default (global) mode: launches on a capturing stream add their device time to
 * the graph instead of running (cuStreamEndCapture hands back a graph whose handle is that time, which
 * cuGraphLaunch runs); an event recorded there becomes a node of the graph. Querying or synchronizing
 * such an event, the capturing stream or the whole context is refused and spoils every capture of the
 * process, whose end then fails with CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, as the driver does.
 */
#define MAX_CAPTURING 16
static struct fake_stream *capturing[MAX_CAPTURING];
static int ncapturing;

static CUresult spoil_captures(CUresult rc) {
    for (int i = 0; i < ncapturing; i++)
        capturing[i]->capture_invalid = 1;
    return rc;
}

static CUresult begin_capture(void *stream) {
    if ((uintptr_t)stream < PER_THREAD_STREAM)
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; /* the legacy stream cannot be captured */
    struct fake_stream *s = fake_stream_of(stream);
    if (s->capturing || ncapturing >= MAX_CAPTURING)
        return CUDA_ERROR_ILLEGAL_STATE;
    s->capturing = 1, s->capture_invalid = 0, s->captured_ns = 0;
    capturing[ncapturing++] = s;
    return CUDA_SUCCESS;
}

#define PER_THREAD(s) ((s) != NULL ? (s) : (void *)(uintptr_t)PER_THREAD_STREAM)

EXPORT CUresult cuStreamBeginCapture(void *stream) { return begin_capture(stream); }
EXPORT CUresult cuStreamBeginCapture_v2(void *stream, int mode) {
    (void)mode;
    return begin_capture(stream);
}
EXPORT CUresult cuStreamBeginCapture_v2_ptsz(void *stream, int mode) {
    return cuStreamBeginCapture_v2(PER_THREAD(stream), mode);
}
EXPORT CUresult cuStreamBeginCaptureToGraph(void *stream, void *graph, const void *deps, const void *edges,
                                            size_t ndeps, int mode) {
    (void)graph, (void)deps, (void)edges, (void)ndeps, (void)mode;
    return begin_capture(stream);
}
EXPORT CUresult cuStreamBeginCaptureToGraph_ptsz(void *stream, void *graph, const void *deps, const void *edges,
                                                 size_t ndeps, int mode) {
    return cuStreamBeginCaptureToGraph(PER_THREAD(stream), graph, deps, edges, ndeps, mode);
}
EXPORT CUresult cuStreamEndCapture_ptsz(void *stream, void **graph);
EXPORT CUresult cuStreamEndCapture(void *stream, void **graph) {
    struct fake_stream *s = fake_stream_of(stream);
    if (!s->capturing)
        return CUDA_ERROR_ILLEGAL_STATE;
    s->capturing = 0;
    for (int i = 0; i < ncapturing; i++)
        if (capturing[i] == s)
            capturing[i] = capturing[--ncapturing];
    if (graph != NULL)
        *graph = s->capture_invalid ? NULL : (void *)(uintptr_t)(s->captured_ns ? s->captured_ns : 1);
    return s->capture_invalid ? CUDA_ERROR_STREAM_CAPTURE_INVALIDATED : CUDA_SUCCESS;
}
EXPORT CUresult cuStreamEndCapture_ptsz(void *stream, void **graph) {
    return cuStreamEndCapture(PER_THREAD(stream), graph);
}
EXPORT CUresult cuStreamIsCapturing(void *stream, int *status) {
    if (status == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    struct fake_stream *s = fake_stream_of(stream);
    *status = s->capturing ? (s->capture_invalid ? 2 : 1) : 0;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuStreamCreate(void **stream, unsigned flags) {
    (void)flags;
    return fake_create(stream, sizeof(struct fake_stream));
}
EXPORT CUresult cuStreamDestroy_v2(void *stream) { return fake_stream_destroy(stream); }
EXPORT CUresult cuCtxSynchronize(void) {
    return ncapturing > 0 ? spoil_captures(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED) : fake_synchronize();
}
EXPORT CUresult cuStreamSynchronize(void *stream) {
    if (fake_stream_of(stream)->capturing)
        return spoil_captures(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    return fake_stream_synchronize(stream);
}
EXPORT CUresult cuStreamSynchronize_ptsz(void *stream) { return cuStreamSynchronize(stream); }

/* Synchronous copies return once the work queued before them is done: on the legacy default stream that
 * is all of this process's work, on the per-thread one (_ptds) the calling thread's. The copy itself takes
 * no device time and moves no bytes (device pointers are bookkeeping blocks). */
static CUresult copy_wait(int per_thread) {
    if (fake.state == NULL)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (current < 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    return per_thread ? fake_stream_synchronize((void *)PER_THREAD_STREAM) : fake_synchronize();
}
EXPORT CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
    (void)dst, (void)src, (void)bytes;
    return copy_wait(0);
}
EXPORT CUresult cuMemcpy_ptds(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
    (void)dst, (void)src, (void)bytes;
    return copy_wait(1);
}
EXPORT CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t bytes) {
    (void)dst, (void)src, (void)bytes;
    return copy_wait(0);
}
EXPORT CUresult cuMemcpyDtoH_v2_ptds(void *dst, CUdeviceptr src, size_t bytes) {
    (void)dst, (void)src, (void)bytes;
    return copy_wait(1);
}
EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t bytes) {
    (void)dst, (void)src, (void)bytes;
    return copy_wait(0);
}
EXPORT CUresult cuMemcpyHtoD_v2_ptds(CUdeviceptr dst, const void *src, size_t bytes) {
    (void)dst, (void)src, (void)bytes;
    return copy_wait(1);
}
EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
    return cuMemcpy(dst, src, bytes);
}
EXPORT CUresult cuMemcpyDtoD_v2_ptds(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
    return cuMemcpy_ptds(dst, src, bytes);
}

EXPORT CUresult cuEventCreate(void **event, unsigned flags) {
    (void)flags;
    return fake_create(event, sizeof(struct fake_event));
}
EXPORT CUresult cuEventDestroy_v2(void *event) { return fake_event_destroy(event); }
EXPORT CUresult cuEventRecord(void *event, void *stream) { return fake_event_record(current, event, stream); }
EXPORT CUresult cuEventRecord_ptsz(void *event, void *stream) { return cuEventRecord(event, stream); }
static int is_captured(void *event) { return event != NULL && ((struct fake_event *)event)->captured; }

EXPORT CUresult cuEventQuery(void *event) {
    return is_captured(event) ? spoil_captures(CUDA_ERROR_CAPTURED_EVENT) : fake_event_query(event);
}
EXPORT CUresult cuStreamQuery(void *stream) {
    if (fake_stream_of(stream)->capturing)
        return spoil_captures(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    return fake_stream_query(stream);
}
EXPORT CUresult cuStreamQuery_ptsz(void *stream) { return cuStreamQuery(stream); }
EXPORT CUresult cuEventSynchronize(void *event) {
    return is_captured(event) ? spoil_captures(CUDA_ERROR_CAPTURED_EVENT) : fake_event_synchronize(event);
}
EXPORT CUresult cuEventElapsedTime(float *ms, void *start, void *end) {
    if (is_captured(start) || is_captured(end))
        return spoil_captures(CUDA_ERROR_CAPTURED_EVENT);
    return fake_event_elapsed(ms, start, end);
}

/* What cuGetProcAddress answers from: base names, resolved to the newest variant the caller may use. */
struct proc {
    const char *name;
    void *fn;
};
#define P(n) {#n, (void *)n}
static const struct proc procs[] = {
    P(cuInit), P(cuDriverGetVersion), P(cuDeviceGetCount), P(cuDeviceGet), P(cuDeviceGetUuid), P(cuDeviceGetUuid_v2), P(cuDeviceTotalMem_v2),
    P(cuCtxCreate_v2), P(cuCtxSetCurrent), P(cuCtxGetDevice), P(cuMemAlloc_v2), P(cuMemAllocManaged),
    P(cuMemAllocAsync), P(cuMemAllocAsync_ptsz), P(cuMemAllocFromPoolAsync), P(cuMemAllocFromPoolAsync_ptsz),
    P(cuMemAllocPitch_v2), P(cuMemFree_v2), P(cuMemFreeAsync), P(cuMemFreeAsync_ptsz), P(cuMemCreate),
    P(cuMemRelease), P(cuMemGetInfo_v2), P(cuLaunchKernel), P(cuLaunchKernel_ptsz), P(cuLaunchKernelEx),
    P(cuLaunchKernelEx_ptsz), P(cuLaunchCooperativeKernel), P(cuLaunchCooperativeKernel_ptsz), P(cuGraphLaunch),
    P(cuGraphLaunch_ptsz), P(cuCtxSynchronize), P(cuStreamSynchronize), P(cuStreamSynchronize_ptsz),
    P(cuStreamCreate), P(cuStreamDestroy_v2), P(cuEventCreate), P(cuEventDestroy_v2), P(cuEventRecord),
    P(cuEventRecord_ptsz), P(cuEventQuery), P(cuStreamQuery), P(cuStreamQuery_ptsz), P(cuEventSynchronize), P(cuEventElapsedTime), P(cuMemcpy),
    P(cuMemcpy_ptds), P(cuMemcpyDtoH_v2), P(cuMemcpyDtoH_v2_ptds), P(cuMemcpyHtoD_v2),
    P(cuMemcpyHtoD_v2_ptds), P(cuMemcpyDtoD_v2), P(cuMemcpyDtoD_v2_ptds), P(cuStreamBeginCapture_v2),
    P(cuStreamBeginCapture_v2_ptsz), P(cuStreamBeginCaptureToGraph), P(cuStreamBeginCaptureToGraph_ptsz),
    P(cuStreamEndCapture), P(cuStreamEndCapture_ptsz), P(cuStreamIsCapturing),
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
        if (flags & PER_THREAD_STREAM) { /* stream-ordered calls end in _ptsz, synchronous copies in _ptds */
            if (version >= 3020) { /* the newest variant first, as for the default-stream forms */
                snprintf(name, sizeof(name), "%s_v2_ptsz", symbol);
                fn = find_proc(name);
            }
            if (fn == NULL) {
                snprintf(name, sizeof(name), "%s_ptsz", symbol);
                fn = find_proc(name);
            }
            if (fn == NULL && version >= 3020) {
                snprintf(name, sizeof(name), "%s_v2_ptds", symbol);
                fn = find_proc(name);
            }
            if (fn == NULL) {
                snprintf(name, sizeof(name), "%s_ptds", symbol);
                fn = find_proc(name);
            }
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
