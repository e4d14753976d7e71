/*
 * ascend.c - Ascend runtime (RTS, libruntime.so) hooks, below aclrt*: every ACL allocation goes through
 * rtMalloc and friends, so limiting here limits ACL, torch_npu and MindSpore users alike. Over the limit
 * they answer ACL_ERROR_RT_MEMORY_ALLOCATION, the code the rt API itself returns for out-of-memory.
 * Launches go through the compute share's launch boundary, synchronizes and the synchronous rtMemcpy end a
 * batch; aclrtGetMemInfo and rtMemGetInfoEx report the limit.
 */
#define _GNU_SOURCE
#include <stddef.h>

#include "internal.h"

typedef int rtError_t;
typedef void *rtStream_t;

#define RT_SUCCESS 0
#define ACL_ERROR_RT_FEATURE_NOT_SUPPORT 207000
#define ACL_ERROR_RT_MEMORY_ALLOCATION 207001

#define REAL(name) ((name##_fn)xps__real_fn(XPS_SYM_##name))

typedef rtError_t (*rtGetDevice_fn)(int32_t *);

static int current_device(void) {
    if (!__atomic_load_n(&xps__enforcing, __ATOMIC_ACQUIRE))
        return -1;
    rtGetDevice_fn get = REAL(rtGetDevice);
    int32_t dev = -1;
    if (get == NULL || XPS_GUARDED(get(&dev)) != RT_SUCCESS)
        return -1;
    return dev;
}

#define DENY (-2)
static int reserve_current(uint64_t bytes) {
    int dev = current_device();
    int rc = xps__reserve(dev, bytes);
    return rc > 0 ? dev : (rc == 0 ? -1 : DENY);
}

static rtError_t settle(rtError_t rc, enum xps_map_kind kind, void *key, uint64_t bytes, int dev) {
    if (dev >= 0 && (rc != RT_SUCCESS || xps__map_put(kind, (uint64_t)(uintptr_t)key, bytes, dev) != 0))
        xps__release(dev, bytes);
    return rc;
}

#define ALLOC_HOOK(name, params, call, out, bytes, kind)                                                 \
    typedef rtError_t(*name##_fn) params;                                                                \
    XPUSHARE_EXTERN rtError_t name params {                                                              \
        name##_fn real = REAL(name);                                                                     \
        if (XPS_UNLIKELY(real == NULL))                                                                  \
            return ACL_ERROR_RT_FEATURE_NOT_SUPPORT;                                                     \
        if (xps__guard)                                                                                  \
            return real call;                                                                            \
        int dev = reserve_current(bytes);                                                                \
        if (dev == DENY)                                                                                 \
            return ACL_ERROR_RT_MEMORY_ALLOCATION;                                                       \
        rtError_t rc = XPS_GUARDED(real call);                                                           \
        return settle(rc, kind, out ? *out : NULL, bytes, dev);                                          \
    }

ALLOC_HOOK(rtMalloc, (void **ptr, uint64_t size, uint32_t type, uint16_t module), (ptr, size, type, module),
           ptr, size, XPS_MAP_PTR)
ALLOC_HOOK(rtMallocCached, (void **ptr, uint64_t size, uint32_t type, uint16_t module),
           (ptr, size, type, module), ptr, size, XPS_MAP_PTR)
ALLOC_HOOK(rtMallocManaged, (void **ptr, uint64_t size, uint32_t flag, uint16_t module),
           (ptr, size, flag, module), ptr, size, XPS_MAP_PTR)
ALLOC_HOOK(rtMemAllocManaged, (void **ptr, uint64_t size, uint32_t flag, uint16_t module),
           (ptr, size, flag, module), ptr, size, XPS_MAP_PTR)
ALLOC_HOOK(rtDvppMalloc, (void **ptr, uint64_t size, uint16_t module), (ptr, size, module), ptr, size,
           XPS_MAP_PTR)
ALLOC_HOOK(rtMallocPhysical, (void **handle, size_t size, const void *prop, uint64_t flags),
           (handle, size, prop, flags), handle, size, XPS_MAP_HANDLE)

#define FREE_HOOK(name, param, kind)                                                                     \
    typedef rtError_t(*name##_fn)(void *);                                                               \
    XPUSHARE_EXTERN rtError_t name(void *param) {                                                        \
        name##_fn real = REAL(name);                                                                     \
        if (XPS_UNLIKELY(real == NULL))                                                                  \
            return ACL_ERROR_RT_FEATURE_NOT_SUPPORT;                                                     \
        if (xps__guard)                                                                                  \
            return real(param);                                                                          \
        uint64_t size = 0;                                                                               \
        int dev = -1;                                                                                    \
        if (!xps__map_take(kind, (uint64_t)(uintptr_t)param, &size, &dev))                               \
            dev = -1;                                                                                    \
        rtError_t rc = XPS_GUARDED(real(param));                                                         \
        if (dev >= 0 && rc == RT_SUCCESS)                                                                \
            xps__release(dev, size);                                                                     \
        else if (dev >= 0)                                                                               \
            xps__map_put(kind, (uint64_t)(uintptr_t)param, size, dev);                                   \
        return rc;                                                                                       \
    }

FREE_HOOK(rtFree, ptr, XPS_MAP_PTR)
FREE_HOOK(rtDvppFree, ptr, XPS_MAP_PTR)
FREE_HOOK(rtMemFreeManaged, ptr, XPS_MAP_PTR)
FREE_HOOK(rtFreePhysical, handle, XPS_MAP_HANDLE)

static void report_limit(size_t *free_bytes, size_t *total_bytes) {
    uint64_t f, t;
    if (free_bytes != NULL && total_bytes != NULL &&
        xps__mem_info(current_device(), *free_bytes, *total_bytes, &f, &t)) {
        *free_bytes = f;
        *total_bytes = t;
    }
}

typedef rtError_t (*rtMemGetInfoEx_fn)(uint32_t, size_t *, size_t *);
XPUSHARE_EXTERN rtError_t rtMemGetInfoEx(uint32_t type, size_t *free_bytes, size_t *total_bytes) {
    rtMemGetInfoEx_fn real = REAL(rtMemGetInfoEx);
    if (XPS_UNLIKELY(real == NULL))
        return ACL_ERROR_RT_FEATURE_NOT_SUPPORT;
    rtError_t rc = real(type, free_bytes, total_bytes);
    if (rc == RT_SUCCESS && !xps__guard)
        report_limit(free_bytes, total_bytes);
    return rc;
}

typedef int (*aclrtGetMemInfo_fn)(uint32_t, size_t *, size_t *);
XPUSHARE_EXTERN int aclrtGetMemInfo(uint32_t attr, size_t *free_bytes, size_t *total_bytes) {
    aclrtGetMemInfo_fn real = REAL(aclrtGetMemInfo);
    if (XPS_UNLIKELY(real == NULL))
        return ACL_ERROR_RT_FEATURE_NOT_SUPPORT;
    int rc = XPS_GUARDED(real(attr, free_bytes, total_bytes));
    if (rc == RT_SUCCESS && !xps__guard)
        report_limit(free_bytes, total_bytes);
    return rc;
}

/* Launches: the compute-share launch boundary (compute.c), charged by rt events on the launch's stream. */
#define LAUNCH_HOOK(name, params, call)                                                                  \
    typedef rtError_t(*name##_fn) params;                                                                \
    XPUSHARE_EXTERN rtError_t name params {                                                              \
        name##_fn real = REAL(name);                                                                     \
        if (XPS_UNLIKELY(real == NULL))                                                                  \
            return ACL_ERROR_RT_FEATURE_NOT_SUPPORT;                                                     \
        if (xps__guard || !__atomic_load_n(&xps__compute_enabled, __ATOMIC_RELAXED))                     \
            return real call;                                                                            \
        xps__launch_enter(XPS_VENDOR_RT, s);                                                             \
        rtError_t rc = real call;                                                                        \
        xps__launch_exit(XPS_VENDOR_RT);                                                                 \
        return rc;                                                                                       \
    }

/*
 * Completion points: synchronizes (stream, event, context, device) and the synchronous copy. The host
 * waits in them for queued work, so they end a batch and take compute.c's synchronize path: events on
 * the streams this thread launched on first, finished work settled right after (after a copy, once it
 * succeeded, as on CUDA). aclrtSynchronizeDevice(WithTimeout), aclrtSynchronizeStream(WithTimeout) and
 * aclrtMemcpy call these rt functions, so ACL users are covered.
 */
#define SYNC_HOOK(name, params, call, stream, settle_if)                                                 \
    typedef rtError_t(*name##_fn) params;                                                                \
    XPUSHARE_EXTERN rtError_t name params {                                                              \
        name##_fn real = REAL(name);                                                                     \
        if (XPS_UNLIKELY(real == NULL))                                                                  \
            return ACL_ERROR_RT_FEATURE_NOT_SUPPORT;                                                     \
        if (xps__guard || !__atomic_load_n(&xps__compute_enabled, __ATOMIC_RELAXED))                     \
            return real call;                                                                            \
        xps__compute_sync_before(XPS_VENDOR_RT, stream);                                                 \
        rtError_t rc = real call;                                                                        \
        if (settle_if)                                                                                   \
            xps__compute_sync_after(XPS_VENDOR_RT);                                                      \
        return rc;                                                                                       \
    }

SYNC_HOOK(rtStreamSynchronize, (rtStream_t s), (s), s, 1)
SYNC_HOOK(rtStreamSynchronizeWithTimeout, (rtStream_t s, int32_t timeout), (s, timeout), s, 1)
SYNC_HOOK(rtEventSynchronize, (void *event), (event), NULL, 1)
SYNC_HOOK(rtCtxSynchronize, (void), (), NULL, 1)
SYNC_HOOK(rtDeviceSynchronize, (void), (), NULL, 1)
SYNC_HOOK(rtDeviceSynchronizeWithTimeout, (int32_t timeout), (timeout), NULL, 1)
/* rtMemcpyKind_t is an enum: passed as an int. */
SYNC_HOOK(rtMemcpy, (void *dst, uint64_t dest_max, const void *src, uint64_t count, int kind),
          (dst, dest_max, src, count, kind), NULL, rc == RT_SUCCESS)

typedef const void *cptr;
LAUNCH_HOOK(rtKernelLaunch, (cptr stub, uint32_t dim, void *args, uint32_t size, void *sm, rtStream_t s),
            (stub, dim, args, size, sm, s))
LAUNCH_HOOK(rtKernelLaunchWithHandle,
            (void *h, uint64_t key, uint32_t dim, void *args, void *sm, rtStream_t s, cptr info),
            (h, key, dim, args, sm, s, info))
LAUNCH_HOOK(rtKernelLaunchWithHandleV2,
            (void *h, uint64_t key, uint32_t dim, void *args, void *sm, rtStream_t s, cptr cfg),
            (h, key, dim, args, sm, s, cfg))
LAUNCH_HOOK(rtKernelLaunchWithFlag, (cptr stub, uint32_t dim, void *args, void *sm, rtStream_t s, uint32_t fl),
            (stub, dim, args, sm, s, fl))
LAUNCH_HOOK(rtKernelLaunchWithFlagV2,
            (cptr stub, uint32_t dim, void *args, void *sm, rtStream_t s, uint32_t fl, cptr cfg),
            (stub, dim, args, sm, s, fl, cfg))
LAUNCH_HOOK(rtKernelLaunchEx, (void *args, uint32_t size, uint32_t fl, rtStream_t s), (args, size, fl, s))
LAUNCH_HOOK(rtCpuKernelLaunch,
            (cptr so, cptr kernel, uint32_t dim, cptr args, uint32_t size, void *sm, rtStream_t s),
            (so, kernel, dim, args, size, sm, s))
LAUNCH_HOOK(rtCpuKernelLaunchWithFlag,
            (cptr so, cptr kernel, uint32_t dim, cptr args, void *sm, rtStream_t s, uint32_t fl),
            (so, kernel, dim, args, sm, s, fl))
LAUNCH_HOOK(rtAicpuKernelLaunch, (cptr names, uint32_t dim, cptr args, uint32_t size, void *sm, rtStream_t s),
            (names, dim, args, size, sm, s))
LAUNCH_HOOK(rtAicpuKernelLaunchWithFlag,
            (cptr names, uint32_t dim, cptr args, void *sm, rtStream_t s, uint32_t fl),
            (names, dim, args, sm, s, fl))
LAUNCH_HOOK(rtAicpuKernelLaunchEx,
            (uint32_t type, cptr names, uint32_t dim, cptr args, void *sm, rtStream_t s, uint32_t fl),
            (type, names, dim, args, sm, s, fl))
LAUNCH_HOOK(rtAicpuKernelLaunchExWithArgs,
            (uint32_t type, cptr name, uint32_t dim, cptr args, void *sm, rtStream_t s, uint32_t fl),
            (type, name, dim, args, sm, s, fl))
LAUNCH_HOOK(rtLaunchKernelByFuncHandle, (void *fn, uint32_t dim, void *args, rtStream_t s), (fn, dim, args, s))
LAUNCH_HOOK(rtLaunchKernelByFuncHandleV2, (void *fn, uint32_t dim, void *args, rtStream_t s, cptr cfg),
            (fn, dim, args, s, cfg))
LAUNCH_HOOK(rtLaunchKernelByFuncHandleV3, (void *fn, uint32_t dim, cptr args, rtStream_t s, cptr cfg),
            (fn, dim, args, s, cfg))
LAUNCH_HOOK(rtVectorCoreKernelLaunch,
            (cptr stub, uint32_t dim, cptr args, void *sm, rtStream_t s, uint32_t fl, cptr cfg),
            (stub, dim, args, sm, s, fl, cfg))
LAUNCH_HOOK(rtVectorCoreKernelLaunchWithHandle,
            (void *h, uint64_t key, uint32_t dim, cptr args, void *sm, rtStream_t s, cptr cfg),
            (h, key, dim, args, sm, s, cfg))
LAUNCH_HOOK(rtFftsPlusTaskLaunch, (void *info, rtStream_t s), (info, s))
LAUNCH_HOOK(rtFftsPlusTaskLaunchWithFlag, (void *info, rtStream_t s, uint32_t fl), (info, s, fl))
LAUNCH_HOOK(rtModelExecute, (void *model, rtStream_t s, uint32_t fl), (model, s, fl))
LAUNCH_HOOK(rtStarsTaskLaunch, (cptr sqe, uint32_t len, rtStream_t s), (sqe, len, s))
LAUNCH_HOOK(rtStarsTaskLaunchWithFlag, (cptr sqe, uint32_t len, rtStream_t s, uint32_t fl), (sqe, len, s, fl))
