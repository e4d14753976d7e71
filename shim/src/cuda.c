/*
 * cuda.c - CUDA driver hooks: device memory (plain, pitched, managed, stream-ordered, pool, VMM) is
 * reserved in the ledger before the real call and returned on failure or free; memory-info calls report
 * the limit; launches (kernels, Ex, cooperative, graphs) go through the compute share's launch boundary;
 * synchronizes and synchronous copies settle the finished work.
 */
#define _GNU_SOURCE
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
#define DENY (-2)

/* The leading part of CUmemAllocationProp that names the device. */
struct cu_mem_prop {
    int type;
    int requested_handle_types;
    int location_type;
    int location_id;
};

#define REAL(name) ((name##_fn)xps__real_fn(XPS_SYM_##name))

typedef CUresult (*cuCtxGetDevice_fn)(int *);

static int current_device(void) {
    cuCtxGetDevice_fn get = REAL(cuCtxGetDevice);
    int dev = -1;
    if (get == NULL || XPS_GUARDED(get(&dev)) != CUDA_SUCCESS)
        return -1;
    return dev;
}

/* Device to charge (>= 0), -1 to pass through untracked, DENY when over the limit. */
static int reserve_on(int dev, size_t bytes) {
    int rc = xps__reserve(dev, bytes);
    return rc > 0 ? dev : (rc == 0 ? -1 : DENY);
}

static int reserve_current(size_t bytes) {
    if (XPS_UNLIKELY(!__atomic_load_n(&xps__enforcing, __ATOMIC_ACQUIRE)))
        return reserve_on(-1, bytes);
    return reserve_on(current_device(), bytes);
}

/* After the real call: keep the charge and remember it, or give it back. */
static CUresult settle(CUresult rc, enum xps_map_kind kind, uint64_t key, size_t bytes, int dev) {
    if (dev < 0)
        return rc;
    if (rc != CUDA_SUCCESS || xps__map_put(kind, key, bytes, dev) != 0)
        xps__release(dev, bytes); /* a full map cannot track the free: do not count what we cannot return */
    return rc;
}

static void untrack(enum xps_map_kind kind, uint64_t key, int *dev, uint64_t *size) {
    *dev = -1;
    if (!xps__map_take(kind, key, size, dev))
        *dev = -1;
}

static CUresult finish_free(CUresult rc, enum xps_map_kind kind, uint64_t key, int dev, uint64_t size) {
    if (dev < 0)
        return rc;
    if (rc == CUDA_SUCCESS)
        xps__release(dev, size);
    else
        xps__map_put(kind, key, size, dev); /* the free failed: the memory is still held */
    return rc;
}

#define ALLOC_HOOK(name, params, call, bytes)                                                            \
    typedef CUresult(*name##_fn) params;                                                                 \
    XPUSHARE_EXTERN CUresult name params {                                                               \
        name##_fn real = REAL(name);                                                                     \
        if (XPS_UNLIKELY(real == NULL))                                                                  \
            return CUDA_ERROR_NOT_FOUND;                                                                 \
        if (xps__guard)                                                                                  \
            return real call;                                                                            \
        int dev = reserve_current(bytes);                                                                \
        if (dev == DENY)                                                                                 \
            return CUDA_ERROR_OUT_OF_MEMORY;                                                             \
        CUresult rc = XPS_GUARDED(real call);                                                            \
        return settle(rc, XPS_MAP_PTR, dptr ? *dptr : 0, bytes, dev);                                    \
    }

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

#define FREE_HOOK(name, params, call)                                                                    \
    typedef CUresult(*name##_fn) params;                                                                 \
    XPUSHARE_EXTERN CUresult name params {                                                               \
        name##_fn real = REAL(name);                                                                     \
        if (XPS_UNLIKELY(real == NULL))                                                                  \
            return CUDA_ERROR_NOT_FOUND;                                                                 \
        if (xps__guard)                                                                                  \
            return real call;                                                                            \
        int dev;                                                                                         \
        uint64_t size = 0;                                                                               \
        untrack(XPS_MAP_PTR, dptr, &dev, &size); /* before the free: the address may be reused at once */ \
        return finish_free(XPS_GUARDED(real call), XPS_MAP_PTR, dptr, dev, size);                        \
    }

FREE_HOOK(cuMemFree_v2, (CUdeviceptr dptr), (dptr))
FREE_HOOK(cuMemFreeAsync, (CUdeviceptr dptr, CUstream stream), (dptr, stream))
FREE_HOOK(cuMemFreeAsync_ptsz, (CUdeviceptr dptr, CUstream stream), (dptr, stream))

/* The pitch is known only after the call: charge width*height first, then the padding. */
typedef CUresult (*cuMemAllocPitch_v2_fn)(CUdeviceptr *, size_t *, size_t, size_t, unsigned int);
XPUSHARE_EXTERN CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height,
                                            unsigned int element) {
    cuMemAllocPitch_v2_fn real = REAL(cuMemAllocPitch_v2);
    if (XPS_UNLIKELY(real == NULL))
        return CUDA_ERROR_NOT_FOUND;
    if (xps__guard)
        return real(dptr, pitch, width, height, element);
    size_t base = width * height;
    int dev = reserve_current(base);
    if (dev == DENY)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = XPS_GUARDED(real(dptr, pitch, width, height, element));
    if (rc != CUDA_SUCCESS || dev < 0 || pitch == NULL)
        return settle(rc, XPS_MAP_PTR, dptr ? *dptr : 0, base, dev);
    size_t actual = *pitch * height;
    if (actual > base && xps__reserve(dev, actual - base) < 0) {
        cuMemFree_v2_fn free_fn = REAL(cuMemFree_v2);
        if (free_fn != NULL)
            XPS_GUARDED(free_fn(*dptr));
        xps__release(dev, base);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return settle(rc, XPS_MAP_PTR, *dptr, actual > base ? actual : base, dev);
}

/* VMM: physical memory is created and released by handle; mapping it costs nothing more. */
typedef CUresult (*cuMemCreate_fn)(CUmemGenericAllocationHandle *, size_t, const struct cu_mem_prop *,
                                   unsigned long long);
XPUSHARE_EXTERN CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                                     const struct cu_mem_prop *prop, unsigned long long flags) {
    cuMemCreate_fn real = REAL(cuMemCreate);
    if (XPS_UNLIKELY(real == NULL))
        return CUDA_ERROR_NOT_FOUND;
    if (xps__guard)
        return real(handle, size, prop, flags);
    int dev = prop != NULL && prop->location_type == CU_MEM_LOCATION_TYPE_DEVICE
                  ? reserve_on(prop->location_id, size)
                  : -1;
    if (dev == DENY)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = XPS_GUARDED(real(handle, size, prop, flags));
    return settle(rc, XPS_MAP_HANDLE, handle ? *handle : 0, size, dev);
}

typedef CUresult (*cuMemRelease_fn)(CUmemGenericAllocationHandle);
XPUSHARE_EXTERN CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
    cuMemRelease_fn real = REAL(cuMemRelease);
    if (XPS_UNLIKELY(real == NULL))
        return CUDA_ERROR_NOT_FOUND;
    if (xps__guard)
        return real(handle);
    int dev;
    uint64_t size = 0;
    untrack(XPS_MAP_HANDLE, handle, &dev, &size);
    return finish_free(XPS_GUARDED(real(handle)), XPS_MAP_HANDLE, handle, dev, size);
}

typedef CUresult (*cuMemGetInfo_v2_fn)(size_t *, size_t *);
XPUSHARE_EXTERN CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes) {
    cuMemGetInfo_v2_fn real = REAL(cuMemGetInfo_v2);
    if (XPS_UNLIKELY(real == NULL))
        return CUDA_ERROR_NOT_FOUND;
    CUresult rc = real(free_bytes, total_bytes);
    if (rc != CUDA_SUCCESS || xps__guard || free_bytes == NULL || total_bytes == NULL)
        return rc;
    uint64_t f, t;
    if (xps__mem_info(current_device(), *free_bytes, *total_bytes, &f, &t)) {
        *free_bytes = f;
        *total_bytes = t;
    }
    return rc;
}

typedef CUresult (*cuDeviceTotalMem_v2_fn)(size_t *, int);
XPUSHARE_EXTERN CUresult cuDeviceTotalMem_v2(size_t *bytes, int dev) {
    cuDeviceTotalMem_v2_fn real = REAL(cuDeviceTotalMem_v2);
    if (XPS_UNLIKELY(real == NULL))
        return CUDA_ERROR_NOT_FOUND;
    CUresult rc = real(bytes, dev);
    uint64_t f, t;
    if (rc == CUDA_SUCCESS && !xps__guard && bytes != NULL && xps__mem_info(dev, *bytes, *bytes, &f, &t))
        *bytes = t;
    return rc;
}

/*
 * Launches: the compute-share hook point. With compute control on, a launch runs the thread-local
 * launch boundary of compute.c (its slow path may wait there: the throttle) and notes its stream.
 */
#define LAUNCH_HOOK(name, params, call, stream)                                                          \
    typedef CUresult(*name##_fn) params;                                                                 \
    XPUSHARE_EXTERN CUresult name params {                                                               \
        name##_fn real = REAL(name);                                                                     \
        if (XPS_UNLIKELY(real == NULL))                                                                  \
            return CUDA_ERROR_NOT_FOUND;                                                                 \
        if (xps__guard || !__atomic_load_n(&xps__compute_enabled, __ATOMIC_RELAXED))                     \
            return real call;                                                                            \
        xps__launch_enter(XPS_VENDOR_CUDA, stream);                                                      \
        CUresult rc = real call;                                                                         \
        xps__launch_exit(XPS_VENDOR_CUDA);                                                               \
        return rc;                                                                                       \
    }

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

LAUNCH_HOOK(cuLaunchKernel, KERNEL_PARAMS, KERNEL_ARGS, stream)
LAUNCH_HOOK(cuLaunchKernel_ptsz, KERNEL_PARAMS, KERNEL_ARGS, PER_THREAD(stream))
LAUNCH_HOOK(cuLaunchKernelEx, (const void *config, CUfunction f, void **params, void **extra),
            (config, f, params, extra), EX_STREAM(config))
LAUNCH_HOOK(cuLaunchKernelEx_ptsz, (const void *config, CUfunction f, void **params, void **extra),
            (config, f, params, extra), PER_THREAD(EX_STREAM(config)))
LAUNCH_HOOK(cuLaunchCooperativeKernel, COOP_PARAMS, COOP_ARGS, stream)
LAUNCH_HOOK(cuLaunchCooperativeKernel_ptsz, COOP_PARAMS, COOP_ARGS, PER_THREAD(stream))
LAUNCH_HOOK(cuGraphLaunch, (void *graph, CUstream stream), (graph, stream), stream)
LAUNCH_HOOK(cuGraphLaunch_ptsz, (void *graph, CUstream stream), (graph, stream), PER_THREAD(stream))

/* Synchronizes: the events of what this thread launched are recorded first, and read right after. */
#define SYNC_HOOK(name, params, call, stream)                                                            \
    typedef CUresult(*name##_fn) params;                                                                 \
    XPUSHARE_EXTERN CUresult name params {                                                               \
        name##_fn real = REAL(name);                                                                     \
        if (XPS_UNLIKELY(real == NULL))                                                                  \
            return CUDA_ERROR_NOT_FOUND;                                                                 \
        if (xps__guard || !__atomic_load_n(&xps__compute_enabled, __ATOMIC_RELAXED))                     \
            return real call;                                                                            \
        xps__compute_sync_before(XPS_VENDOR_CUDA, stream);                                               \
        CUresult rc = real call;                                                                         \
        xps__compute_sync_after(XPS_VENDOR_CUDA);                                                        \
        return rc;                                                                                       \
    }

SYNC_HOOK(cuStreamSynchronize, (CUstream stream), (stream), stream)
SYNC_HOOK(cuStreamSynchronize_ptsz, (CUstream stream), (stream), PER_THREAD(stream))
SYNC_HOOK(cuCtxSynchronize, (void), (), NULL)
SYNC_HOOK(cuEventSynchronize, (void *event), (event), NULL)

/*
 * Synchronous copies: the host waits in them for the work queued before (the runtime's cudaMemcpy is one;
 * a loop that reads a result back ends its step there), so they end a batch as a synchronize does and take
 * the same path: events first, finished work settled right after a successful copy. Async copies are ordered on their streams and
 * covered by the events recorded there; they need no hook.
 */
#define COPY_HOOK(name, params, call)                                                                    \
    typedef CUresult(*name##_fn) params;                                                                 \
    XPUSHARE_EXTERN CUresult name params {                                                               \
        name##_fn real = REAL(name);                                                                     \
        if (XPS_UNLIKELY(real == NULL))                                                                  \
            return CUDA_ERROR_NOT_FOUND;                                                                 \
        if (xps__guard || !__atomic_load_n(&xps__compute_enabled, __ATOMIC_RELAXED))                     \
            return real call;                                                                            \
        xps__compute_sync_before(XPS_VENDOR_CUDA, NULL);                                                 \
        CUresult rc = real call;                                                                         \
        if (rc == CUDA_SUCCESS)                                                                          \
            xps__compute_sync_after(XPS_VENDOR_CUDA);                                                    \
        return rc;                                                                                       \
    }

#define DTOD_PARAMS (CUdeviceptr dst, CUdeviceptr src, size_t bytes)
#define DTOH_PARAMS (void *dst, CUdeviceptr src, size_t bytes)
#define HTOD_PARAMS (CUdeviceptr dst, const void *src, size_t bytes)
#define COPY_ARGS (dst, src, bytes)

COPY_HOOK(cuMemcpy, DTOD_PARAMS, COPY_ARGS)
COPY_HOOK(cuMemcpy_ptds, DTOD_PARAMS, COPY_ARGS)
COPY_HOOK(cuMemcpyDtoH_v2, DTOH_PARAMS, COPY_ARGS)
COPY_HOOK(cuMemcpyDtoH_v2_ptds, DTOH_PARAMS, COPY_ARGS)
COPY_HOOK(cuMemcpyHtoD_v2, HTOD_PARAMS, COPY_ARGS)
COPY_HOOK(cuMemcpyHtoD_v2_ptds, HTOD_PARAMS, COPY_ARGS)
COPY_HOOK(cuMemcpyDtoD_v2, DTOD_PARAMS, COPY_ARGS)
COPY_HOOK(cuMemcpyDtoD_v2_ptds, DTOD_PARAMS, COPY_ARGS)
