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

/* What the hook macros of internal.h answer here: the rt API's own codes. */
#define XPS_HOOK_STATUS rtError_t
#define XPS_HOOK_OK RT_SUCCESS
#define XPS_HOOK_MISSING ACL_ERROR_RT_FEATURE_NOT_SUPPORT
#define XPS_HOOK_NOMEM ACL_ERROR_RT_MEMORY_ALLOCATION
#define XPS_HOOK_VENDOR XPS_VENDOR_RT

static int current_device(void) {
    if (!__atomic_load_n(&xps__enforcing, __ATOMIC_ACQUIRE))
        return -1;
    return xps__current_device(XPS_VENDOR_RT);
}

/* Without limits there is no device to look up: xps__reserve refuses the allocation. */
static int reserve_current(uint64_t bytes) {
    if (XPS_UNLIKELY(!xps__limits_usable()))
        return xps__reserve_on(-1, bytes);
    return xps__reserve_on(xps__current_device(XPS_VENDOR_RT), bytes);
}

#define ALLOC_HOOK(name, params, call, out, bytes, kind)                                                 \
    XPS_ALLOC_HOOK(name, params, call, bytes, kind, (uint64_t)(uintptr_t)((out) ? *(out) : NULL))

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
    XPS_FREE_HOOK(name, (void *param), (param), kind, (uint64_t)(uintptr_t)param)

FREE_HOOK(rtFree, ptr, XPS_MAP_PTR)
FREE_HOOK(rtDvppFree, ptr, XPS_MAP_PTR)
FREE_HOOK(rtMemFreeManaged, ptr, XPS_MAP_PTR)
FREE_HOOK(rtFreePhysical, handle, XPS_MAP_HANDLE)

XPS_HOOK(rtMemGetInfoEx, (uint32_t type, size_t *free_bytes, size_t *total_bytes)) {
    XPS_HOOK_REAL(rtMemGetInfoEx);
    rtError_t rc = real(type, free_bytes, total_bytes);
    if (rc == RT_SUCCESS && !xps__guard)
        xps__report_limit(current_device, free_bytes, total_bytes);
    return rc;
}

XPS_HOOK(aclrtGetMemInfo, (uint32_t attr, size_t *free_bytes, size_t *total_bytes)) {
    XPS_HOOK_REAL(aclrtGetMemInfo);
    int rc = XPS_GUARDED(real(attr, free_bytes, total_bytes));
    if (rc == RT_SUCCESS && !xps__guard)
        xps__report_limit(current_device, free_bytes, total_bytes);
    return rc;
}

/* Launches: the compute-share launch boundary (compute.c), charged by rt events on the launch's stream. */
#define LAUNCH_HOOK(name, params, call) XPS_LAUNCH_HOOK(name, params, call, s)

/*
 * Completion points: synchronizes (stream, event, context, device) and the synchronous copy. The host
 * waits in them for queued work, so they end a batch and take compute.c's synchronize path: events on
 * the streams this thread launched on first, finished work settled right after (after a copy, once it
 * succeeded, as on CUDA). aclrtSynchronizeDevice(WithTimeout), aclrtSynchronizeStream(WithTimeout) and
 * aclrtMemcpy call these rt functions, so ACL users are covered.
 */
XPS_SYNC_HOOK(rtStreamSynchronize, (rtStream_t s), (s), s)
XPS_SYNC_HOOK(rtStreamSynchronizeWithTimeout, (rtStream_t s, int32_t timeout), (s, timeout), s)
XPS_SYNC_HOOK(rtEventSynchronize, (void *event), (event), XPS_NO_STREAM)
XPS_SYNC_HOOK(rtCtxSynchronize, (void), (), XPS_ALL_STREAMS)
XPS_SYNC_HOOK(rtDeviceSynchronize, (void), (), XPS_ALL_STREAMS)
XPS_SYNC_HOOK(rtDeviceSynchronizeWithTimeout, (int32_t timeout), (timeout), XPS_ALL_STREAMS)
/* Queries (aclrtQueryEvent, aclrtStreamQuery reach these): a completed one settles like a synchronize. */
XPS_QUERY_HOOK(rtStreamQuery, (rtStream_t s), (s))
XPS_QUERY_HOOK(rtEventQuery, (void *event), (event))
/* rtMemcpyKind_t is an enum: passed as an int. */
XPS_COPY_HOOK(rtMemcpy, (void *dst, uint64_t dest_max, const void *src, uint64_t count, int kind),
              (dst, dest_max, src, count, kind))

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
/*
 * The rts* launch API of newer CANN runtimes (public source: hicann/runtime). ACL reaches it from
 * aclrtLaunchKernelWithConfig (rtsLaunchKernelWithConfig) and aclrtLaunchKernelWithHostArgs
 * (rtsLaunchKernelWithHostArgs, which aclnn operators launch through); aclmdlRIExecuteAsync-style model
 * runs reach rtsModelExecuteAsync. The synchronous rtsModelExecute has no stream to measure on and is
 * not hooked (deprecated by the runtime; see docs/shim.md).
 */
LAUNCH_HOOK(rtsLaunchKernelWithConfig, (void *fn, uint32_t dim, rtStream_t s, void *cfg, void *args, void *rsv),
            (fn, dim, s, cfg, args, rsv))
LAUNCH_HOOK(rtsLaunchKernelWithHostArgs,
            (void *fn, uint32_t dim, rtStream_t s, void *cfg, void *args, uint32_t size, void *ph, uint32_t nph),
            (fn, dim, s, cfg, args, size, ph, nph))
LAUNCH_HOOK(rtsLaunchKernelWithDevArgs,
            (void *fn, uint32_t dim, rtStream_t s, void *cfg, cptr args, uint32_t size, void *rsv),
            (fn, dim, s, cfg, args, size, rsv))
LAUNCH_HOOK(rtsLaunchCpuKernel, (cptr fn, uint32_t dim, rtStream_t s, cptr cfg, void *args), (fn, dim, s, cfg, args))
LAUNCH_HOOK(rtsModelExecuteAsync, (void *model, rtStream_t s), (model, s))
LAUNCH_HOOK(rtStarsTaskLaunch, (cptr sqe, uint32_t len, rtStream_t s), (sqe, len, s))
LAUNCH_HOOK(rtStarsTaskLaunchWithFlag, (cptr sqe, uint32_t len, rtStream_t s, uint32_t fl), (sqe, len, s, fl))
