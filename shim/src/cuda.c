/*
 * cuda.c - CUDA driver hooks: device memory (plain, pitched, managed, stream-ordered, pool, VMM) is
 * reserved in the ledger before the real call and returned on failure or free; memory-info calls report
 * the limit; launches (kernels, Ex, cooperative, graphs) go through the compute share's launch boundary;
 * synchronizes and synchronous copies settle the finished work.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stddef.h>

#include "internal.h"

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef unsigned long long CUmemGenericAllocationHandle;
typedef void *CUstream;
typedef void *CUfunction;

#define CUDA_SUCCESS 0
#define CUDA_ERROR_OUT_OF_MEMORY 2
#define CUDA_ERROR_NOT_FOUND 500
#define CU_MEM_LOCATION_TYPE_DEVICE 1

/* What the hook macros of internal.h answer here: the driver's own codes. */
#define XPS_HOOK_STATUS CUresult
#define XPS_HOOK_OK CUDA_SUCCESS
#define XPS_HOOK_MISSING CUDA_ERROR_NOT_FOUND
#define XPS_HOOK_NOMEM CUDA_ERROR_OUT_OF_MEMORY
#define XPS_HOOK_VENDOR XPS_VENDOR_CUDA

/* The leading part of CUmemAllocationProp that names the device. */
struct cu_mem_prop {
    int type;
    int requested_handle_types;
    int location_type;
    int location_id;
};

static int current_device(void) {
    return xps__current_device(XPS_VENDOR_CUDA);
}

/* Without limits there is no device to look up: xps__reserve refuses the allocation. */
static int reserve_current(uint64_t bytes) {
    if (XPS_UNLIKELY(!xps__limits_usable()))
        return xps__reserve_on(-1, bytes);
    return xps__reserve_on(current_device(), bytes);
}

#define ALLOC_HOOK(name, params, call, bytes)                                                            \
    XPS_ALLOC_HOOK(name, params, call, bytes, XPS_MAP_PTR, dptr ? *dptr : 0)

ALLOC_HOOK(cuMemAlloc_v2, (CUdeviceptr * dptr, size_t bytesize), (dptr, bytesize), bytesize)
ALLOC_HOOK(cuMemAllocManaged, (CUdeviceptr * dptr, size_t bytesize, unsigned int flags),
           (dptr, bytesize, flags), bytesize)
ALLOC_HOOK(cuMemAllocAsync, (CUdeviceptr * dptr, size_t bytesize, CUstream stream), (dptr, bytesize, stream),
           bytesize)
ALLOC_HOOK(cuMemAllocAsync_ptsz, (CUdeviceptr * dptr, size_t bytesize, CUstream stream),
           (dptr, bytesize, stream), bytesize)
ALLOC_HOOK(cuMemAllocFromPoolAsync, (CUdeviceptr * dptr, size_t bytesize, void *pool, CUstream stream),
           (dptr, bytesize, pool, stream), bytesize)
ALLOC_HOOK(cuMemAllocFromPoolAsync_ptsz, (CUdeviceptr * dptr, size_t bytesize, void *pool, CUstream stream),
           (dptr, bytesize, pool, stream), bytesize)

#define FREE_HOOK(name, params, call) XPS_FREE_HOOK(name, params, call, XPS_MAP_PTR, dptr)

FREE_HOOK(cuMemFree_v2, (CUdeviceptr dptr), (dptr))
FREE_HOOK(cuMemFreeAsync, (CUdeviceptr dptr, CUstream stream), (dptr, stream))
FREE_HOOK(cuMemFreeAsync_ptsz, (CUdeviceptr dptr, CUstream stream), (dptr, stream))

/* The pitch is known only after the call: charge width*height first, then the padding. */
XPS_HOOK(cuMemAllocPitch_v2,
         (CUdeviceptr * dptr, size_t *pitch, size_t width, size_t height, unsigned int element)) {
    XPS_HOOK_REAL(cuMemAllocPitch_v2);
    if (xps__guard)
        return real(dptr, pitch, width, height, element);
    size_t base = width * height;
    int dev = reserve_current(base);
    if (dev == XPS_DENY)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = XPS_GUARDED(real(dptr, pitch, width, height, element));
    if (rc != CUDA_SUCCESS || dev < 0 || pitch == NULL) {
        xps__settle(rc == CUDA_SUCCESS, XPS_MAP_PTR, dptr ? *dptr : 0, base, dev);
        return rc;
    }
    size_t actual = *pitch * height;
    if (actual > base && xps__reserve(dev, actual - base) < 0) {
        cuMemFree_v2_fn free_fn = XPS_REAL(cuMemFree_v2);
        if (free_fn != NULL)
            XPS_GUARDED(free_fn(*dptr));
        xps__release(dev, base);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    xps__settle(1, XPS_MAP_PTR, *dptr, actual > base ? actual : base, dev);
    return rc;
}

/* VMM: physical memory is created and released by handle; mapping it costs nothing more. */
XPS_HOOK(cuMemCreate, (CUmemGenericAllocationHandle * handle, size_t size, const struct cu_mem_prop *prop,
                       unsigned long long flags)) {
    XPS_HOOK_REAL(cuMemCreate);
    if (xps__guard)
        return real(handle, size, prop, flags);
    int dev = prop != NULL && prop->location_type == CU_MEM_LOCATION_TYPE_DEVICE
                  ? xps__reserve_on(xps__device_slot(XPS_VENDOR_CUDA, prop->location_id), size)
                  : -1;
    if (dev == XPS_DENY)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = XPS_GUARDED(real(handle, size, prop, flags));
    xps__settle(rc == CUDA_SUCCESS, XPS_MAP_HANDLE, handle ? *handle : 0, size, dev);
    return rc;
}

XPS_FREE_HOOK(cuMemRelease, (CUmemGenericAllocationHandle handle), (handle), XPS_MAP_HANDLE, handle)

XPS_HOOK(cuMemGetInfo_v2, (size_t *free_bytes, size_t *total_bytes)) {
    XPS_HOOK_REAL(cuMemGetInfo_v2);
    CUresult rc = real(free_bytes, total_bytes);
    if (rc == CUDA_SUCCESS && !xps__guard)
        xps__report_limit(current_device, free_bytes, total_bytes);
    return rc;
}

XPS_HOOK(cuDeviceTotalMem_v2, (size_t *bytes, int dev)) {
    XPS_HOOK_REAL(cuDeviceTotalMem_v2);
    CUresult rc = real(bytes, dev);
    uint64_t f, t;
    if (rc == CUDA_SUCCESS && !xps__guard && bytes != NULL &&
        xps__mem_info(xps__device_slot(XPS_VENDOR_CUDA, dev), *bytes, *bytes, &f, &t))
        *bytes = t;
    return rc;
}

/*
 * Launches: the compute-share hook point. With compute control on, a launch runs the thread-local
 * launch boundary of compute.c (its slow path may wait there: the throttle) and notes its stream.
 */
#define KERNEL_PARAMS                                                                                    \
    (CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,         \
     unsigned shared, CUstream stream, void **params, void **extra)
#define KERNEL_ARGS (f, gx, gy, gz, bx, by, bz, shared, stream, params, extra)
#define COOP_PARAMS                                                                                      \
    (CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,         \
     unsigned shared, CUstream stream, void **params)
#define COOP_ARGS (f, gx, gy, gz, bx, by, bz, shared, stream, params)

/* The leading part of CUlaunchConfig, up to the stream the launch goes to. */
struct cu_launch_config {
    unsigned grid[3], block[3], shared;
    CUstream stream;
};
#define EX_STREAM(config) ((config) != NULL ? ((const struct cu_launch_config *)(config))->stream : NULL)
/* In a _ptsz call the NULL stream is the thread's own stream: events must go to CU_STREAM_PER_THREAD. */
#define PER_THREAD(s) ((s) != NULL ? (s) : (CUstream)(uintptr_t)2)

XPS_LAUNCH_HOOK(cuLaunchKernel, KERNEL_PARAMS, KERNEL_ARGS, stream)
XPS_LAUNCH_HOOK(cuLaunchKernel_ptsz, KERNEL_PARAMS, KERNEL_ARGS, PER_THREAD(stream))
XPS_LAUNCH_HOOK(cuLaunchKernelEx, (const void *config, CUfunction f, void **params, void **extra),
                (config, f, params, extra), EX_STREAM(config))
XPS_LAUNCH_HOOK(cuLaunchKernelEx_ptsz, (const void *config, CUfunction f, void **params, void **extra),
                (config, f, params, extra), PER_THREAD(EX_STREAM(config)))
XPS_LAUNCH_HOOK(cuLaunchCooperativeKernel, COOP_PARAMS, COOP_ARGS, stream)
XPS_LAUNCH_HOOK(cuLaunchCooperativeKernel_ptsz, COOP_PARAMS, COOP_ARGS, PER_THREAD(stream))
XPS_LAUNCH_HOOK(cuGraphLaunch, (void *graph, CUstream stream), (graph, stream), stream)
XPS_LAUNCH_HOOK(cuGraphLaunch_ptsz, (void *graph, CUstream stream), (graph, stream), PER_THREAD(stream))

/*
 * Stream capture (CUDA graphs: PyTorch's torch.cuda.graph, torch.compile's reduce-overhead mode): while
 * a stream of this process is capturing, launches on it are recorded into a graph instead of run, and in
 * the default (global) capture mode an event query or synchronize anywhere in the process may spoil the
 * capture. So compute control stands aside while any capture is open (XPS_COMPUTE_HOOK); the graph's
 * work is measured when it is launched (cuGraphLaunch), and work other threads launch meanwhile goes
 * unmeasured for the capture's length. The capturing streams are kept in a small set: a capture is
 * counted once, and its end is taken from the driver (a failed end may leave it open). CUDA 10.0's
 * cuStreamBeginCapture (no mode) is not hooked: every runtime since asks for the _v2.
 */
#define MAX_CAPTURES 64
#define CU_STREAM_CAPTURE_STATUS_NONE 0
typedef CUresult (*is_capturing_fn)(CUstream, int *);

int xps__captures;
static CUstream capturing[MAX_CAPTURES];
static pthread_mutex_t capture_mu = PTHREAD_MUTEX_INITIALIZER;

static void capture_begun(CUstream stream) {
    pthread_mutex_lock(&capture_mu);
    int n = __atomic_load_n(&xps__captures, __ATOMIC_RELAXED), known = 0;
    for (int i = 0; i < n && !known; i++)
        known = capturing[i] == stream;
    if (!known && n < MAX_CAPTURES) {
        capturing[n] = stream;
        __atomic_store_n(&xps__captures, n + 1, __ATOMIC_RELEASE);
    } else if (!known) {
        xps__warn("more than 64 streams capturing at once: compute control stays aside until they end");
    }
    pthread_mutex_unlock(&capture_mu);
}

/* After an end-capture call: forget the stream once the driver says it is no longer capturing. */
static void capture_ended(CUstream stream) {
    is_capturing_fn is_capturing = (is_capturing_fn)xps__real_fn(XPS_SYM_cuStreamIsCapturing);
    int status = CU_STREAM_CAPTURE_STATUS_NONE;
    if (is_capturing != NULL && XPS_GUARDED(is_capturing(stream, &status)) == CUDA_SUCCESS &&
        status != CU_STREAM_CAPTURE_STATUS_NONE)
        return; /* still open (an end from the wrong thread): its own end comes later */
    pthread_mutex_lock(&capture_mu);
    int n = __atomic_load_n(&xps__captures, __ATOMIC_RELAXED);
    for (int i = 0; i < n; i++)
        if (capturing[i] == stream) {
            capturing[i] = capturing[n - 1];
            __atomic_store_n(&xps__captures, n - 1, __ATOMIC_RELEASE);
            break;
        }
    pthread_mutex_unlock(&capture_mu);
}

#define BEGIN_CAPTURE_HOOK(name, params, call, stream)                                                   \
    XPS_HOOK(name, params) {                                                                            \
        XPS_HOOK_REAL(name);                                                                            \
        CUresult rc = real call;                                                                        \
        if (rc == CUDA_SUCCESS && !xps__guard)                                                          \
            capture_begun(stream);                                                                      \
        return rc;                                                                                      \
    }
#define END_CAPTURE_HOOK(name, stream_of)                                                                \
    XPS_HOOK(name, (CUstream stream, void **graph)) {                                                   \
        XPS_HOOK_REAL(name);                                                                            \
        CUresult rc = real(stream, graph);                                                              \
        if (!xps__guard && __atomic_load_n(&xps__captures, __ATOMIC_ACQUIRE) != 0)                      \
            capture_ended(stream_of(stream));                                                           \
        return rc;                                                                                      \
    }
#define SAME(s) (s)
#define CAPTURE_TO_GRAPH_PARAMS                                                                          \
    (CUstream stream, void *graph, const void *deps, const void *edges, size_t ndeps, int mode)

BEGIN_CAPTURE_HOOK(cuStreamBeginCapture_v2, (CUstream stream, int mode), (stream, mode), stream)
BEGIN_CAPTURE_HOOK(cuStreamBeginCapture_v2_ptsz, (CUstream stream, int mode), (stream, mode), PER_THREAD(stream))
BEGIN_CAPTURE_HOOK(cuStreamBeginCaptureToGraph, CAPTURE_TO_GRAPH_PARAMS, (stream, graph, deps, edges, ndeps, mode),
                   stream)
BEGIN_CAPTURE_HOOK(cuStreamBeginCaptureToGraph_ptsz, CAPTURE_TO_GRAPH_PARAMS,
                   (stream, graph, deps, edges, ndeps, mode), PER_THREAD(stream))
END_CAPTURE_HOOK(cuStreamEndCapture, SAME)
END_CAPTURE_HOOK(cuStreamEndCapture_ptsz, PER_THREAD)

/* Synchronizes: the events of what this thread launched are recorded first, and read right after. */
XPS_SYNC_HOOK(cuStreamSynchronize, (CUstream stream), (stream), stream)
XPS_SYNC_HOOK(cuStreamSynchronize_ptsz, (CUstream stream), (stream), PER_THREAD(stream))
XPS_SYNC_HOOK(cuCtxSynchronize, (void), (), XPS_ALL_STREAMS)
XPS_SYNC_HOOK(cuEventSynchronize, (void *event), (event), XPS_NO_STREAM)

/* Queries: one that finds the work done settles it, as a synchronize does. */
XPS_QUERY_HOOK(cuStreamQuery, (CUstream stream), (stream))
XPS_QUERY_HOOK(cuStreamQuery_ptsz, (CUstream stream), (stream))
XPS_QUERY_HOOK(cuEventQuery, (void *event), (event))

/*
 * Synchronous copies: the host waits in them for the work queued before (the runtime's cudaMemcpy is one;
 * a loop that reads a result back ends its step there), so they end a batch as a synchronize does and take
 * the same path: events first, finished work settled right after a successful copy. Async copies are ordered on their streams and
 * covered by the events recorded there; they need no hook.
 */
#define DTOD_PARAMS (CUdeviceptr dst, CUdeviceptr src, size_t bytes)
#define DTOH_PARAMS (void *dst, CUdeviceptr src, size_t bytes)
#define HTOD_PARAMS (CUdeviceptr dst, const void *src, size_t bytes)
#define COPY_ARGS (dst, src, bytes)

XPS_COPY_HOOK(cuMemcpy, DTOD_PARAMS, COPY_ARGS)
XPS_COPY_HOOK(cuMemcpy_ptds, DTOD_PARAMS, COPY_ARGS)
XPS_COPY_HOOK(cuMemcpyDtoH_v2, DTOH_PARAMS, COPY_ARGS)
XPS_COPY_HOOK(cuMemcpyDtoH_v2_ptds, DTOH_PARAMS, COPY_ARGS)
XPS_COPY_HOOK(cuMemcpyHtoD_v2, HTOD_PARAMS, COPY_ARGS)
XPS_COPY_HOOK(cuMemcpyHtoD_v2_ptds, HTOD_PARAMS, COPY_ARGS)
XPS_COPY_HOOK(cuMemcpyDtoD_v2, DTOD_PARAMS, COPY_ARGS)
XPS_COPY_HOOK(cuMemcpyDtoD_v2_ptds, DTOD_PARAMS, COPY_ARGS)
