/*
 * internal.h - declarations shared by the shim's source files (names start with xps__).
 */
#ifndef XPUSHARE_INTERNAL_H
#define XPUSHARE_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "xpushare.h"

#define XPS_HIDDEN __attribute__((visibility("hidden")))
#define XPS_LIKELY(x) __builtin_expect(!!(x), 1)
#define XPS_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Vendor families: each family's real symbols are resolved together from the library that defines them. */
enum xps_family { XPS_FAM_CUDA, XPS_FAM_NVML, XPS_FAM_RT, XPS_FAM_ACL, XPS_FAM_COUNT };

/*
 * Every vendor symbol the shim knows: X(family, name, hooked). hooked=1 symbols are exported and
 * replaced; hooked=0 ones are only called (helpers such as cuCtxGetDevice).
 */
#define XPS_SYMBOLS(X)                                                                                  \
    X(CUDA, cuGetProcAddress, 1)                                                                         \
    X(CUDA, cuGetProcAddress_v2, 1)                                                                      \
    X(CUDA, cuMemAlloc_v2, 1)                                                                            \
    X(CUDA, cuMemAllocPitch_v2, 1)                                                                       \
    X(CUDA, cuMemAllocManaged, 1)                                                                        \
    X(CUDA, cuMemAllocAsync, 1)                                                                          \
    X(CUDA, cuMemAllocAsync_ptsz, 1)                                                                     \
    X(CUDA, cuMemAllocFromPoolAsync, 1)                                                                  \
    X(CUDA, cuMemAllocFromPoolAsync_ptsz, 1)                                                             \
    X(CUDA, cuMemFree_v2, 1)                                                                             \
    X(CUDA, cuMemFreeAsync, 1)                                                                           \
    X(CUDA, cuMemFreeAsync_ptsz, 1)                                                                      \
    X(CUDA, cuMemCreate, 1)                                                                              \
    X(CUDA, cuMemRelease, 1)                                                                             \
    X(CUDA, cuMemGetInfo_v2, 1)                                                                          \
    X(CUDA, cuDeviceTotalMem_v2, 1)                                                                      \
    X(CUDA, cuLaunchKernel, 1)                                                                           \
    X(CUDA, cuLaunchKernel_ptsz, 1)                                                                      \
    X(CUDA, cuLaunchKernelEx, 1)                                                                         \
    X(CUDA, cuLaunchKernelEx_ptsz, 1)                                                                    \
    X(CUDA, cuLaunchCooperativeKernel, 1)                                                                \
    X(CUDA, cuLaunchCooperativeKernel_ptsz, 1)                                                           \
    X(CUDA, cuGraphLaunch, 1)                                                                            \
    X(CUDA, cuGraphLaunch_ptsz, 1)                                                                       \
    X(CUDA, cuStreamSynchronize, 1)                                                                      \
    X(CUDA, cuStreamSynchronize_ptsz, 1)                                                                 \
    X(CUDA, cuCtxSynchronize, 1)                                                                         \
    X(CUDA, cuEventSynchronize, 1)                                                                       \
    X(CUDA, cuMemcpy, 1)                                                                                 \
    X(CUDA, cuMemcpy_ptds, 1)                                                                            \
    X(CUDA, cuMemcpyDtoH_v2, 1)                                                                          \
    X(CUDA, cuMemcpyDtoH_v2_ptds, 1)                                                                     \
    X(CUDA, cuMemcpyHtoD_v2, 1)                                                                          \
    X(CUDA, cuMemcpyHtoD_v2_ptds, 1)                                                                     \
    X(CUDA, cuMemcpyDtoD_v2, 1)                                                                          \
    X(CUDA, cuMemcpyDtoD_v2_ptds, 1)                                                                     \
    X(CUDA, cuCtxGetDevice, 0)                                                                           \
    X(CUDA, cuDeviceGet, 0)                                                                              \
    X(CUDA, cuDeviceGetUuid, 0)                                                                          \
    X(CUDA, cuDeviceGetUuid_v2, 0)                                                                       \
    X(CUDA, cuEventCreate, 0)                                                                            \
    X(CUDA, cuEventRecord, 0)                                                                            \
    X(CUDA, cuEventQuery, 1)                                                                             \
    X(CUDA, cuStreamQuery, 1)                                                                            \
    X(CUDA, cuStreamQuery_ptsz, 1)                                                                       \
    X(CUDA, cuEventElapsedTime, 0)                                                                       \
    X(CUDA, cuStreamBeginCapture_v2, 1)                                                                  \
    X(CUDA, cuStreamBeginCapture_v2_ptsz, 1)                                                             \
    X(CUDA, cuStreamBeginCaptureToGraph, 1)                                                              \
    X(CUDA, cuStreamBeginCaptureToGraph_ptsz, 1)                                                         \
    X(CUDA, cuStreamEndCapture, 1)                                                                       \
    X(CUDA, cuStreamEndCapture_ptsz, 1)                                                                  \
    X(CUDA, cuStreamIsCapturing, 0)                                                                      \
    X(NVML, nvmlDeviceGetMemoryInfo, 1)                                                                  \
    X(NVML, nvmlDeviceGetMemoryInfo_v2, 1)                                                               \
    X(NVML, nvmlDeviceGetUUID, 0)                                                                        \
    X(RT, rtMalloc, 1)                                                                                   \
    X(RT, rtMallocCached, 1)                                                                             \
    X(RT, rtMallocManaged, 1)                                                                            \
    X(RT, rtMemAllocManaged, 1)                                                                          \
    X(RT, rtMallocPhysical, 1)                                                                           \
    X(RT, rtDvppMalloc, 1)                                                                               \
    X(RT, rtFree, 1)                                                                                     \
    X(RT, rtDvppFree, 1)                                                                                 \
    X(RT, rtMemFreeManaged, 1)                                                                           \
    X(RT, rtFreePhysical, 1)                                                                             \
    X(RT, rtMemGetInfoEx, 1)                                                                             \
    X(RT, rtKernelLaunch, 1)                                                                             \
    X(RT, rtKernelLaunchWithHandle, 1)                                                                   \
    X(RT, rtKernelLaunchWithHandleV2, 1)                                                                 \
    X(RT, rtKernelLaunchWithFlag, 1)                                                                     \
    X(RT, rtKernelLaunchWithFlagV2, 1)                                                                   \
    X(RT, rtKernelLaunchEx, 1)                                                                           \
    X(RT, rtCpuKernelLaunch, 1)                                                                          \
    X(RT, rtCpuKernelLaunchWithFlag, 1)                                                                  \
    X(RT, rtAicpuKernelLaunch, 1)                                                                        \
    X(RT, rtAicpuKernelLaunchWithFlag, 1)                                                                \
    X(RT, rtAicpuKernelLaunchEx, 1)                                                                      \
    X(RT, rtAicpuKernelLaunchExWithArgs, 1)                                                              \
    X(RT, rtLaunchKernelByFuncHandle, 1)                                                                 \
    X(RT, rtLaunchKernelByFuncHandleV2, 1)                                                               \
    X(RT, rtLaunchKernelByFuncHandleV3, 1)                                                               \
    X(RT, rtVectorCoreKernelLaunch, 1)                                                                   \
    X(RT, rtVectorCoreKernelLaunchWithHandle, 1)                                                         \
    X(RT, rtFftsPlusTaskLaunch, 1)                                                                       \
    X(RT, rtFftsPlusTaskLaunchWithFlag, 1)                                                               \
    X(RT, rtModelExecute, 1)                                                                             \
    X(RT, rtsLaunchKernelWithConfig, 1)                                                                  \
    X(RT, rtsLaunchKernelWithHostArgs, 1)                                                                \
    X(RT, rtsLaunchKernelWithDevArgs, 1)                                                                 \
    X(RT, rtsLaunchCpuKernel, 1)                                                                         \
    X(RT, rtsModelExecuteAsync, 1)                                                                       \
    X(RT, rtStarsTaskLaunch, 1)                                                                          \
    X(RT, rtStarsTaskLaunchWithFlag, 1)                                                                  \
    X(RT, rtStreamSynchronize, 1)                                                                        \
    X(RT, rtEventSynchronize, 1)                                                                         \
    X(RT, rtStreamSynchronizeWithTimeout, 1)                                                             \
    X(RT, rtCtxSynchronize, 1)                                                                           \
    X(RT, rtDeviceSynchronize, 1)                                                                        \
    X(RT, rtDeviceSynchronizeWithTimeout, 1)                                                             \
    X(RT, rtMemcpy, 1)                                                                                   \
    X(RT, rtGetDevice, 0)                                                                                \
    X(RT, rtGetDevicePhyIdByIndex, 0)                                                                    \
    X(RT, rtEventCreate, 0)                                                                              \
    X(RT, rtEventRecord, 0)                                                                              \
    X(RT, rtEventQuery, 1)                                                                               \
    X(RT, rtStreamQuery, 1)                                                                              \
    X(RT, rtEventElapsedTime, 0)                                                                         \
    X(ACL, aclrtGetMemInfo, 1)

#define XPS_ENUM(fam, name, hooked) XPS_SYM_##name,
enum xps_sym { XPS_SYMBOLS(XPS_ENUM) XPS_SYM_COUNT };
#undef XPS_ENUM

/* symbols.c */
XPS_HIDDEN extern void *xps__real[XPS_SYM_COUNT];
XPS_HIDDEN void *xps__resolve(enum xps_sym sym);
XPS_HIDDEN int xps__sym_by_name(const char *name);
XPS_HIDDEN void *xps__hook_of(int sym);
XPS_HIDDEN void *xps__hook_for_pointer(void *real);
XPS_HIDDEN void xps__bind_family_from_handle(int sym, void *handle);
XPS_HIDDEN void xps__bind_family_from_pointer(int sym, void *real);
XPS_HIDDEN void *xps__real_dlsym(void *handle, const char *name);
XPS_HIDDEN void *xps__real_dlvsym(void *handle, const char *name, const char *version);

/* elfsym.c: the address of function `name` in libc (or libdl) by its symbol table, `self` excluded. */
XPS_HIDDEN void *xps__libc_function(const char *name, void *self);

/* Real pointer of a symbol: one load on the hot path, resolved once on first use. */
static inline void *xps__real_fn(enum xps_sym sym) {
    void *p = __atomic_load_n(&xps__real[sym], __ATOMIC_ACQUIRE);
    return XPS_LIKELY(p != NULL) ? p : xps__resolve(sym);
}

/* init.c */
XPS_HIDDEN extern __thread int xps__guard __attribute__((tls_model("initial-exec")));
XPS_HIDDEN void xps__ensure_init(void);
XPS_HIDDEN void xps__warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* limits.c: the parsed limits file. */
struct xps_limit {
    int index;    /* in a merged set: the fallback ordinal (see xpushare.h), which is also its slot */
    int physical; /* -1: not given */
    char uuid[XPUSHARE_KEY_LEN];
    char claim[XPUSHARE_KEY_LEN]; /* the claim whose ledger and board entry this device uses */
    /* Further claims of the container on the same physical device: their board entries add up. */
    char also[XPUSHARE_MAX_SAME_DEVICE - 1][XPUSHARE_KEY_LEN];
    int nalso;
    uint64_t memory_bytes;
    uint32_t core_percent;
    uint32_t priority;
    uint32_t policy;
    char ledger[256];    /* the claim's own ledger of the device */
    char board[256];     /* the device's board (read-only); its peers' ledgers are in claims/ beside it */
    uint64_t memory_max; /* allocation ceiling for live changes; 0: the memory value */
    uint32_t cores_max;  /* likewise for cores; 0 when absent: the cores value */
    uint32_t has_cores_max;
    uint32_t scheduling; /* XPUSHARE_SCHED_*: serial when absent */
};
struct xps_limits {
    int version;
    char claim[XPUSHARE_KEY_LEN];
    int count;
    int error_line;
    struct xps_limit devices[XPUSHARE_MAX_DEVICES];
};
XPS_HIDDEN int xps__limits_parse(const char *text, struct xps_limits *out);
XPS_HIDDEN int xps__limits_load(const char *path, struct xps_limits *out);
/* A container's limits: every claim file of a directory, or the one file `path` names, merged (devices
 * ordered and slotted as xpushare.h says); -ENOENT when there is none. `bad` receives the failed file. */
/* Add one claim's quota to another's as the plugin adds two requests of one claim on a device (memory 0
 * = unlimited wins, cores capped at 100, the higher priority, fixed when either is): claims of a
 * container on one device, from the files and from the board alike. */
XPS_HIDDEN void xps__quota_add(uint64_t *limit_bytes, uint32_t *core_percent, uint32_t *priority,
                               uint32_t *policy, uint64_t add_bytes, uint32_t add_percent,
                               uint32_t add_priority, uint32_t add_policy);
XPS_HIDDEN int xps__limits_load_set(const char *path, struct xps_limits *out, char *bad, size_t bad_size);

/* memory.c: per-device admission against the ledger. */
XPS_HIDDEN extern int xps__enforcing; /* 1 once a limits file is loaded; 0: allocations are refused */
XPS_HIDDEN void xps__memory_init(const struct xps_limits *limits);
/* No usable limits file (rc -errno, line > 0 for a parse error): refuse every device allocation. */
XPS_HIDDEN void xps__memory_refuse(const char *path, int rc, int line);
XPS_HIDDEN int xps__limits_settle(void);

/* Whether limits are loaded; off the hot path, waits for the set-up (a hook may run before it). */
static inline int xps__limits_usable(void) {
    return XPS_LIKELY(__atomic_load_n(&xps__enforcing, __ATOMIC_ACQUIRE)) || xps__limits_settle();
}
XPS_HIDDEN int xps__device_by_uuid(const char *uuid);
XPS_HIDDEN int xps__device_by_physical(int physical);
XPS_HIDDEN int xps__limits_have_physical(void); /* whether any device of the limits has a physical id */
XPS_HIDDEN int xps__device_configured(int slot);
XPS_HIDDEN int xps__reserve(int dev, uint64_t bytes);
XPS_HIDDEN void xps__release(int dev, uint64_t bytes);
XPS_HIDDEN int xps__mem_info(int dev, uint64_t real_free, uint64_t real_total, uint64_t *free_out,
                             uint64_t *total_out);
XPS_HIDDEN void xps__memory_after_fork(void);
XPS_HIDDEN uint64_t xps__now_ns(void);
XPS_HIDDEN int xps__ledger_prepare(int fd, const char *key, const char *uuid);

/* memory.c: the ceilings a live quota change is bounded by (the limits file's allocation). */
XPS_HIDDEN uint64_t xps__memory_ceiling(const struct xps_limit *limit);
XPS_HIDDEN uint32_t xps__cores_ceiling(const struct xps_limit *limit);
/* The attached ledger of a device (NULL if not usable); attaches on first use. */
XPS_HIDDEN struct xpushare_ledger *xps__device_ledger(int dev, int *proc, const struct xps_limit **limit);
/* The device's board as this process mapped it (NULL: none usable) and its own entry's index there. */
XPS_HIDDEN const struct xpushare_board *xps__device_board(int dev, int *own_index);
/* Copy a changed board entry of the claim into its ledger (the live quota); cheap when nothing changed. */
XPS_HIDDEN void xps__sync_limits(int dev);
/* Whether `key` is a claim of this container on device slot `dev` (its own or one merged into it). */
XPS_HIDDEN int xps__own_claim(int dev, const char *key);
XPS_HIDDEN int xps__maybe_reclaim(int dev);

/* compute.c: launch-boundary throttle and event accounting per process and device. */
enum xps_vendor { XPS_VENDOR_CUDA, XPS_VENDOR_RT, XPS_VENDOR_COUNT };
struct xps_thread {
    int countdown;        /* launches left before the next slow path */
    int span;             /* launches between slow paths, adapted to about XPS_CHECK_NS apart */
    uint64_t last_check;  /* clock of the last slow path */
    int record;           /* record an event after this launch */
    int uncovered;        /* launched since this thread's last event */
    int dev;              /* device of the last check, -1 none */
    uint64_t last_record; /* clock of this thread's last event */
    uint64_t uncovered_since; /* clock of its first launch since its last event */
    void *streams[4];     /* streams launched on since the last event */
    int nstreams;
    int exit_hook;        /* the thread-exit destructor is armed */
    uint64_t prompt_seq;  /* the event the synchronize in progress waits for (compute.c), 0: none */
};
/* What a synchronize waits for, beside a stream: every stream, or nothing that dates its work's end. */
#define XPS_ALL_STREAMS ((void *)~(uintptr_t)0)
#define XPS_NO_STREAM ((void *)(~(uintptr_t)0 - 1))
XPS_HIDDEN extern __thread struct xps_thread xps__thread __attribute__((tls_model("initial-exec")));
XPS_HIDDEN extern int xps__compute_enabled;
/* cuda.c: streams of this process being captured into CUDA graphs. While any is, compute control stands
 * aside (launches then record a graph, not run; the events and queries it makes would end up in the
 * graph, or be refused and spoil the capture). */
XPS_HIDDEN extern int xps__captures;
XPS_HIDDEN void xps__compute_init(const struct xps_limits *limits);
XPS_HIDDEN void xps__compute_before(enum xps_vendor vendor, void *stream);
XPS_HIDDEN void xps__compute_after(enum xps_vendor vendor);
XPS_HIDDEN void xps__compute_note_stream(void *stream);
XPS_HIDDEN void xps__compute_sync_before(enum xps_vendor vendor, void *stream);
XPS_HIDDEN void xps__compute_sync_after(enum xps_vendor vendor);
XPS_HIDDEN void xps__compute_after_fork(void);

static inline uint64_t xps__clock_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no system call */
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * The launch path: a thread-local countdown. The slow path (clock, events, the rule) runs when it runs
 * out: every launch while launches are slow, every `span` launches (about XPS_CHECK_NS apart) while
 * they come fast, and at the first launch after any synchronize.
 */
static inline void xps__launch_enter(enum xps_vendor vendor, void *stream) {
    struct xps_thread *t = &xps__thread;
    if (XPS_UNLIKELY(--t->countdown <= 0))
        xps__compute_before(vendor, stream);
    if (XPS_UNLIKELY(t->nstreams == 0 || t->streams[0] != stream))
        xps__compute_note_stream(stream);
}

static inline void xps__launch_exit(enum xps_vendor vendor) {
    if (XPS_UNLIKELY(xps__thread.record))
        xps__compute_after(vendor);
}

/* shares.c: token buckets and the admission rule. */
XPS_HIDDEN int xps__compute_lock(struct xpushare_ledger *ledger);
XPS_HIDDEN void xps__compute_unlock(struct xpushare_ledger *ledger);
XPS_HIDDEN int xps__compute_init_lock(struct xpushare_ledger *ledger);
XPS_HIDDEN void xps__compute_recount(struct xpushare_ledger *ledger);

/* shares.c: xpushare_ledger_share, and in `open` whether work not yet charged (a peer's, or another
 * process's of the claim) overlapped the window: the charge may change once that work is charged. */
XPS_HIDDEN uint64_t xps__ledger_share(struct xpushare_ledger *ledger, int proc, const struct xpushare_peers *peers,
                                      uint64_t start_ns, uint64_t end_ns, int *open);

/* shares.c: whether a claim's head shows work launched or completed just now (between two batches). */
XPS_HIDDEN int xps__recently_active(const struct xpushare_ledger_head *head, uint64_t now_ns);

/* peers.c: what this process knows of the device's other claims (with the device's compute mutex held). */
/* `fresh`: read the peers' heads now, not from the last refresh (before charging completed work). */
XPS_HIDDEN const struct xpushare_peers *xps__peers(int dev, uint64_t now, int fresh);
XPS_HIDDEN void xps__peers_reset(void);

/* ledger.c: the lock and journal every update uses (procs.c updates process slots with them). */
XPS_HIDDEN int xps__init_robust_mutex(pthread_mutex_t *mutex);
XPS_HIDDEN int xps__ledger_lock(struct xpushare_ledger *ledger);
XPS_HIDDEN void xps__ledger_unlock(struct xpushare_ledger *ledger);
XPS_HIDDEN void xps__journal_begin(struct xpushare_ledger *ledger, uint32_t proc);
XPS_HIDDEN void xps__journal_end(struct xpushare_ledger *ledger);
XPS_HIDDEN int xps__set_limits_locked(struct xpushare_ledger *ledger, uint64_t limit_bytes, uint32_t core_percent,
                                      uint32_t priority, uint32_t policy);

/* Whether `proc` is no process slot of `ledger` (the check every per-process entry point starts with). */
static inline int xps__bad_proc(const struct xpushare_ledger *ledger, int proc) {
    return ledger == NULL || proc < 0 || proc >= XPUSHARE_MAX_PROCS;
}

/* Check `proc` and take the ledger lock for an update of its slot: 0 with the lock held, or -errno. */
static inline int xps__lock_proc(struct xpushare_ledger *ledger, int proc) {
    return xps__bad_proc(ledger, proc) ? -EINVAL : xps__ledger_lock(ledger);
}

/* Slots in use are below this (bounded, whatever the file holds). */
static inline int xps__proc_hwm(const struct xpushare_ledger *ledger) {
    uint32_t hwm = __atomic_load_n(&ledger->head.proc_hwm, __ATOMIC_ACQUIRE);
    return hwm > XPUSHARE_MAX_PROCS ? XPUSHARE_MAX_PROCS : (int)hwm;
}

/* Take `bytes` off the claim's used bytes, never below zero. */
static inline void xps__uncount_bytes(struct xpushare_claim *c, uint64_t bytes) {
    c->used_bytes -= bytes < c->used_bytes ? bytes : c->used_bytes;
}

/* hashmap.c: allocation -> (size, device), preallocated. */
enum xps_map_kind { XPS_MAP_PTR, XPS_MAP_HANDLE, XPS_MAP_COUNT };
XPS_HIDDEN int xps__map_put(enum xps_map_kind kind, uint64_t key, uint64_t size, int dev);
XPS_HIDDEN int xps__map_take(enum xps_map_kind kind, uint64_t key, uint64_t *size, int *dev);
XPS_HIDDEN void xps__map_reset(void);

/* Thread-local guard: internal calls made by a hook go straight to the real function. */
#define XPS_GUARDED(expr)                                                                               \
    __extension__({                                                                                     \
        xps__guard++;                                                                                   \
        __typeof__(expr) xps_r_ = (expr);                                                               \
        xps__guard--;                                                                                   \
        xps_r_;                                                                                         \
    })

/*
 * Hooks of the vendor files (cuda.c, ascend.c): the same bodies around each vendor's own signatures,
 * hence macros. A vendor file defines, before it uses them:
 *   XPS_HOOK_STATUS   the status type its functions return
 *   XPS_HOOK_OK       its success status
 *   XPS_HOOK_MISSING  what a hook answers when the real function cannot be found
 *   XPS_HOOK_NOMEM    what an allocation over the limit answers
 *   XPS_HOOK_VENDOR   its enum xps_vendor (the compute share's events)
 * and, for allocation hooks, a static int reserve_current(uint64_t bytes) (xps__reserve_on on the
 * calling thread's device).
 */
#define XPS_REAL(name) ((name##_fn)xps__real_fn(XPS_SYM_##name))

/* The real function's type (name_fn) and the exported hook's head; the body follows in braces. */
#define XPS_HOOK(name, params)                                                                          \
    typedef XPS_HOOK_STATUS(*name##_fn) params;                                                         \
    XPUSHARE_EXTERN XPS_HOOK_STATUS name params

/* A hook's first statement: the real function in `real`, XPS_HOOK_MISSING without one. */
#define XPS_HOOK_REAL(name)                                                                             \
    name##_fn real = XPS_REAL(name);                                                                    \
    if (XPS_UNLIKELY(real == NULL))                                                                     \
        return XPS_HOOK_MISSING

/* identity.c: the container's device (its slot) that ordinal `ordinal` of this process is; -1 for a
 * negative ordinal, XPS_UNCLAIMED for a device no claim of the container holds (refused memory). */
#define XPS_UNCLAIMED (-3)
XPS_HIDDEN int xps__device_slot(enum xps_vendor vendor, int ordinal);

/* The calling thread's device (cuCtxGetDevice, rtGetDevice) as a slot; -1 if none, or XPS_UNCLAIMED. */
static inline int xps__current_device(enum xps_vendor vendor) {
    typedef int (*get_fn)(int *);
    enum xps_sym sym = vendor == XPS_VENDOR_CUDA ? XPS_SYM_cuCtxGetDevice : XPS_SYM_rtGetDevice;
    get_fn get = (get_fn)xps__real_fn(sym);
    int dev = -1;
    if (get == NULL || XPS_GUARDED(get(&dev)) != 0)
        return -1;
    return xps__device_slot(vendor, dev);
}

#define XPS_DENY (-2)

/* Device to charge (>= 0), -1 to pass through untracked, XPS_DENY when over the limit. */
static inline int xps__reserve_on(int dev, uint64_t bytes) {
    int rc = xps__reserve(dev, bytes);
    return rc > 0 ? dev : (rc == 0 ? -1 : XPS_DENY);
}

/* After the real allocation: keep the charge and remember it, or give it back. */
static inline void xps__settle(int ok, enum xps_map_kind kind, uint64_t key, uint64_t bytes, int dev) {
    if (dev >= 0 && (!ok || xps__map_put(kind, key, bytes, dev) != 0))
        xps__release(dev, bytes); /* a full map cannot track the free: do not count what we cannot return */
}

/* Before a free: take the allocation out of the map (its address may be reused at once); dev -1: unknown. */
static inline void xps__untrack(enum xps_map_kind kind, uint64_t key, int *dev, uint64_t *size) {
    *dev = -1;
    if (!xps__map_take(kind, key, size, dev))
        *dev = -1;
}

/* After the real free: return the bytes, or put the allocation back if the free failed (still held). */
static inline void xps__finish_free(int ok, enum xps_map_kind kind, uint64_t key, int dev, uint64_t size) {
    if (dev < 0)
        return;
    if (ok)
        xps__release(dev, size);
    else
        xps__map_put(kind, key, size, dev);
}

/* Memory-info hooks: replace the real figures with the limit's when `device()` is a limited device. */
static inline void xps__report_limit(int (*device)(void), size_t *free_bytes, size_t *total_bytes) {
    uint64_t f, t;
    if (free_bytes != NULL && total_bytes != NULL &&
        xps__mem_info(device(), *free_bytes, *total_bytes, &f, &t)) {
        *free_bytes = f;
        *total_bytes = t;
    }
}

/* An allocation: reserved before the real call, settled after it; `key` (read after the call) maps it. */
#define XPS_ALLOC_HOOK(name, params, call, bytes, kind, key)                                            \
    XPS_HOOK(name, params) {                                                                            \
        XPS_HOOK_REAL(name);                                                                            \
        if (xps__guard)                                                                                 \
            return real call;                                                                           \
        int dev = reserve_current(bytes);                                                               \
        if (dev == XPS_DENY)                                                                            \
            return XPS_HOOK_NOMEM;                                                                      \
        XPS_HOOK_STATUS rc = XPS_GUARDED(real call);                                                    \
        xps__settle(rc == XPS_HOOK_OK, kind, key, bytes, dev);                                          \
        return rc;                                                                                      \
    }

/* A free of the allocation mapped under `key`. */
#define XPS_FREE_HOOK(name, params, call, kind, key)                                                    \
    XPS_HOOK(name, params) {                                                                            \
        XPS_HOOK_REAL(name);                                                                            \
        if (xps__guard)                                                                                 \
            return real call;                                                                           \
        int dev;                                                                                        \
        uint64_t size = 0;                                                                              \
        xps__untrack(kind, key, &dev, &size);                                                           \
        XPS_HOOK_STATUS rc = XPS_GUARDED(real call);                                                    \
        xps__finish_free(rc == XPS_HOOK_OK, kind, key, dev, size);                                      \
        return rc;                                                                                      \
    }

/*
 * A compute-share hook: enter(vendor, stream) before the real call and leave(vendor) after it (only
 * after a successful one when `success_only`), with compute control on and outside the shim's own calls.
 */
#define XPS_COMPUTE_HOOK(name, params, call, stream, enter, leave, success_only)                        \
    XPS_HOOK(name, params) {                                                                            \
        XPS_HOOK_REAL(name);                                                                            \
        if (xps__guard || !__atomic_load_n(&xps__compute_enabled, __ATOMIC_RELAXED) ||                  \
            __atomic_load_n(&xps__captures, __ATOMIC_RELAXED) != 0)                                     \
            return real call;                                                                           \
        enter(XPS_HOOK_VENDOR, stream);                                                                 \
        XPS_HOOK_STATUS rc = real call;                                                                 \
        if (!(success_only) || rc == XPS_HOOK_OK)                                                       \
            leave(XPS_HOOK_VENDOR);                                                                     \
        return rc;                                                                                      \
    }

/* A launch: the thread-local launch boundary (its slow path may wait there: the throttle). */
#define XPS_LAUNCH_HOOK(name, params, call, stream)                                                     \
    XPS_COMPUTE_HOOK(name, params, call, stream, xps__launch_enter, xps__launch_exit, 0)

/* A synchronize: events of what this thread launched recorded first, finished work settled after. */
#define XPS_SYNC_HOOK(name, params, call, stream)                                                       \
    XPS_COMPUTE_HOOK(name, params, call, stream, xps__compute_sync_before, xps__compute_sync_after, 0)

/* A query that finds the work done is a completion point, as a synchronize is: an application that polls
 * instead of blocking stops counting as busy at once (not at its next launch). Settled on success only. */
#define XPS_QUERY_HOOK(name, params, call)                                                              \
    XPS_COMPUTE_HOOK(name, params, call, XPS_NO_STREAM, xps__compute_sync_before, xps__compute_sync_after, 1)

/* A synchronous copy ends a batch as a synchronize does; the work is settled once the copy succeeded. */
#define XPS_COPY_HOOK(name, params, call)                                                               \
    XPS_COMPUTE_HOOK(name, params, call, XPS_NO_STREAM, xps__compute_sync_before, xps__compute_sync_after, 1)

#endif
