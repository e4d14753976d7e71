/*
 * A fake Ascend runtime (libruntime.so, the RTS layer under ACL) on the simulated device of
 * fakes/common/fake_device.h, the one fakes/cuda runs on: device memory with a capacity and a
 * device timeline shared by all processes through a state file. This file is the rt API surface.
 *
 * Environment: FAKE_ASCEND_STATE (shared state file), FAKE_ASCEND_DEVICES (default 1, at most 8),
 * FAKE_ASCEND_MEMORY (bytes per device, default 1 GiB). Out of memory answers
 * ACL_ERROR_RT_MEMORY_ALLOCATION (207001), as the rt API does. Launches occupy `blockDim` ns of the
 * shared device timeline (serialized with every process's work) and record their end on their stream;
 * rt events (rtEventRecord/Query/ElapsedTime/Synchronize) and rtStreamSynchronize compare that end with
 * CLOCK_MONOTONIC. rtCtxSynchronize and rtDeviceSynchronize wait for all of this process's work; the
 * synchronous rtMemcpy waits for the work queued before it on the default stream (it takes no device time
 * and moves no bytes: device pointers are bookkeeping blocks). The _WithTimeout synchronizes give up
 * after `timeout` ms (-1: never) with ACL_ERROR_RT_STREAM_SYNC_TIMEOUT. A stream holds at most 20 ms of
 * queued work, a bounded task queue as on the device. A NULL stream is the calling thread's default
 * stream. Build with -I fakes/common.
 *
 * Device numbers as in a container: ASCEND_RT_VISIBLE_DEVICES narrows and reorders the logical ids
 * (rtSetDevice and rtGetDevice take the process's own numbers, 0..n-1 of that list), and
 * rtGetDevicePhyIdByIndex answers the physical chip id behind a number: FAKE_ASCEND_PHYSICAL="5,7" gives
 * them per logical id, else the /dev/davinci<N> nodes present, in ascending order (a container given
 * chips 5 and 7 sees logical 0 and 1 there); with neither it is not supported, as on an old runtime.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))
#define RT_SUCCESS 0
#define ACL_ERROR_RT_PARAM_INVALID 107000
#define ACL_ERROR_RT_CONTEXT_NULL 107002
#define ACL_ERROR_RT_MEMORY_ALLOCATION 207001
#define ACL_ERROR_RT_MEMORY_FREE 207002
#define ACL_ERROR_RT_EVENT_NOT_COMPLETE 507006
#define ACL_ERROR_RT_STREAM_SYNC_TIMEOUT 507046

#define FAKE_SUCCESS RT_SUCCESS
#define FAKE_ERROR_NOT_INITIALIZED ACL_ERROR_RT_CONTEXT_NULL /* nothing loaded: no device was set */
#define FAKE_ERROR_NO_CONTEXT ACL_ERROR_RT_CONTEXT_NULL
#define FAKE_ERROR_INVALID_VALUE ACL_ERROR_RT_PARAM_INVALID
#define FAKE_ERROR_OUT_OF_MEMORY ACL_ERROR_RT_MEMORY_ALLOCATION
#define FAKE_ERROR_BAD_FREE ACL_ERROR_RT_MEMORY_FREE
#define FAKE_ERROR_NOT_READY ACL_ERROR_RT_EVENT_NOT_COMPLETE
#define FAKE_LAST_DEFAULT_STREAM 0u
#include "fake_device.h"

typedef int rtError_t;
#define ACL_ERROR_RT_FEATURE_NOT_SUPPORT 207000

static __thread int current = -1;      /* the logical device of this thread's work */
static __thread int current_user = -1; /* the number the process set it by */

/* Parse "a,b,c" into out (at most max); the count, or -1 for a malformed list. */
static int parse_ids(const char *list, int *out, int max) {
    int n = 0;
    for (const char *c = list; *c != '\0';) {
        char *end = NULL;
        long v = strtol(c, &end, 10);
        if (end == c || v < 0 || v > 1 << 20 || n >= max || (*end != ',' && *end != '\0'))
            return -1;
        out[n++] = (int)v;
        c = *end == ',' ? end + 1 : end;
    }
    return n;
}

/* The process's number `user` as a logical id, through ASCEND_RT_VISIBLE_DEVICES; -1 if invalid. */
static int logical_of(int32_t user) {
    const char *visible = getenv("ASCEND_RT_VISIBLE_DEVICES");
    if (visible == NULL || visible[0] == '\0')
        return fake_device_valid(user) ? user : -1;
    int ids[FAKE_MAX_DEVICES];
    int n = parse_ids(visible, ids, FAKE_MAX_DEVICES);
    if (user < 0 || user >= n || !fake_device_valid(ids[user]))
        return -1;
    return ids[user];
}

static int compare_ints(const void *a, const void *b) {
    return *(const int *)a - *(const int *)b;
}

/* Physical chip ids per logical id: FAKE_ASCEND_PHYSICAL, else the davinci nodes in /dev; the count. */
static int physical_ids(int *out, int max) {
    const char *list = fake_env("ASCEND", "PHYSICAL");
    if (list != NULL)
        return parse_ids(list, out, max);
    DIR *dir = opendir("/dev");
    if (dir == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL && n < max) {
        char *end = NULL;
        if (strncmp(e->d_name, "davinci", 7) != 0 || e->d_name[7] < '0' || e->d_name[7] > '9')
            continue;
        long v = strtol(e->d_name + 7, &end, 10);
        if (*end == '\0')
            out[n++] = (int)v;
    }
    closedir(dir);
    qsort(out, (size_t)n, sizeof(out[0]), compare_ints);
    return n;
}

EXPORT rtError_t rtSetDevice(int32_t dev) {
    if (fake.state == NULL)
        fake_load("ASCEND");
    int logical = logical_of(dev);
    if (logical < 0)
        return ACL_ERROR_RT_PARAM_INVALID;
    current = logical;
    current_user = dev;
    return RT_SUCCESS;
}

EXPORT rtError_t rtGetDevice(int32_t *dev) {
    if (current < 0)
        return ACL_ERROR_RT_CONTEXT_NULL;
    *dev = current_user;
    return RT_SUCCESS;
}

EXPORT rtError_t rtGetDevicePhyIdByIndex(uint32_t index, uint32_t *physical) {
    if (fake.state == NULL)
        fake_load("ASCEND");
    int ids[FAKE_MAX_DEVICES];
    int n = physical_ids(ids, FAKE_MAX_DEVICES);
    if (n <= 0)
        return ACL_ERROR_RT_FEATURE_NOT_SUPPORT;
    int logical = logical_of((int32_t)index);
    if (physical == NULL || logical < 0 || logical >= n)
        return ACL_ERROR_RT_PARAM_INVALID;
    *physical = (uint32_t)ids[logical];
    return RT_SUCCESS;
}

EXPORT rtError_t rtGetDeviceCount(int32_t *count) {
    if (fake.state == NULL)
        fake_load("ASCEND");
    const char *visible = getenv("ASCEND_RT_VISIBLE_DEVICES");
    int ids[FAKE_MAX_DEVICES];
    int n = visible != NULL && visible[0] != '\0' ? parse_ids(visible, ids, FAKE_MAX_DEVICES) : -1;
    *count = n >= 0 ? n : fake.device_count;
    return RT_SUCCESS;
}

static rtError_t take(uint64_t size, int kind, void **out) {
    uintptr_t handle = 0;
    rtError_t rc = fake_take(current, size, kind, out == NULL ? NULL : &handle);
    if (rc == RT_SUCCESS)
        *out = (void *)handle;
    return rc;
}

EXPORT rtError_t rtMalloc(void **ptr, uint64_t size, uint32_t type, uint16_t module) {
    (void)type, (void)module;
    return take(size, 1, ptr);
}
EXPORT rtError_t rtMallocCached(void **ptr, uint64_t size, uint32_t type, uint16_t module) {
    return rtMalloc(ptr, size, type, module);
}
EXPORT rtError_t rtMallocManaged(void **ptr, uint64_t size, uint32_t flag, uint16_t module) {
    return rtMalloc(ptr, size, flag, module);
}
EXPORT rtError_t rtMemAllocManaged(void **ptr, uint64_t size, uint32_t flag, uint16_t module) {
    return rtMalloc(ptr, size, flag, module);
}
EXPORT rtError_t rtDvppMalloc(void **ptr, uint64_t size, uint16_t module) { return rtMalloc(ptr, size, 0, module); }
EXPORT rtError_t rtMallocPhysical(void **handle, size_t size, const void *prop, uint64_t flags) {
    (void)prop, (void)flags;
    return take(size, 2, handle);
}
EXPORT rtError_t rtFree(void *ptr) { return fake_give((uintptr_t)ptr, 1); }
EXPORT rtError_t rtDvppFree(void *ptr) { return fake_give((uintptr_t)ptr, 1); }
EXPORT rtError_t rtMemFreeManaged(void *ptr) { return fake_give((uintptr_t)ptr, 1); }
EXPORT rtError_t rtFreePhysical(void *handle) { return fake_give((uintptr_t)handle, 2); }

EXPORT rtError_t rtMemGetInfoEx(uint32_t type, size_t *free_bytes, size_t *total_bytes) {
    (void)type;
    return fake_mem_info(current, free_bytes, total_bytes);
}

EXPORT rtError_t rtKernelLaunch(const void *stub, uint32_t dim, void *args, uint32_t size, void *sm, void *s) {
    (void)stub, (void)args, (void)size, (void)sm;
    return fake_occupy(current, dim, s);
}
EXPORT rtError_t rtKernelLaunchWithHandleV2(void *h, uint64_t key, uint32_t dim, void *args, void *sm, void *s,
                                            const void *cfg) {
    (void)h, (void)key, (void)args, (void)sm, (void)cfg;
    return fake_occupy(current, dim, s);
}
EXPORT rtError_t rtKernelLaunchWithFlagV2(const void *stub, uint32_t dim, void *args, void *sm, void *s,
                                          uint32_t flags, const void *cfg) {
    (void)stub, (void)args, (void)sm, (void)flags, (void)cfg;
    return fake_occupy(current, dim, s);
}
/* The rts* launch API (newer runtimes; aclnn operators launch through rtsLaunchKernelWithHostArgs). */
EXPORT rtError_t rtsLaunchKernelWithHostArgs(void *fn, uint32_t dim, void *s, void *cfg, void *args, uint32_t size,
                                             void *placeholders, uint32_t count) {
    (void)fn, (void)cfg, (void)args, (void)size, (void)placeholders, (void)count;
    return fake_occupy(current, dim, s);
}
EXPORT rtError_t rtsLaunchKernelWithConfig(void *fn, uint32_t dim, void *s, void *cfg, void *args, void *reserve) {
    (void)fn, (void)cfg, (void)args, (void)reserve;
    return fake_occupy(current, dim, s);
}
EXPORT rtError_t rtsModelExecuteAsync(void *model, void *s) {
    (void)model;
    return fake_occupy(current, 1000, s);
}
EXPORT rtError_t rtModelExecute(void *model, void *s, uint32_t flag) {
    (void)model, (void)flag;
    return fake_occupy(current, 1000, s);
}

EXPORT rtError_t rtStreamCreate(void **stream, int32_t priority) {
    (void)priority;
    return fake_create(stream, sizeof(struct fake_stream));
}
EXPORT rtError_t rtStreamSynchronize(void *stream) { return fake_stream_synchronize(stream); }

/* Wait until `end`, or `timeout` ms (-1: no limit; below -1 invalid). */
static rtError_t wait_until(uint64_t end, int32_t timeout) {
    if (timeout < -1)
        return ACL_ERROR_RT_PARAM_INVALID;
    uint64_t deadline = timeout < 0 ? end : fake_now_ns() + (uint64_t)timeout * 1000000ull;
    fake_sleep_until(end < deadline ? end : deadline);
    return fake_now_ns() >= end ? RT_SUCCESS : ACL_ERROR_RT_STREAM_SYNC_TIMEOUT;
}
EXPORT rtError_t rtStreamSynchronizeWithTimeout(void *stream, int32_t timeout) {
    return wait_until(__atomic_load_n(&fake_stream_of(stream)->last_end, __ATOMIC_ACQUIRE), timeout);
}
/* All of this process's work (a static helper: an exported call would go through the PLT to a hook). */
static rtError_t device_wait(int32_t timeout) {
    if (current < 0)
        return ACL_ERROR_RT_CONTEXT_NULL;
    return wait_until(__atomic_load_n(&fake.last_end, __ATOMIC_ACQUIRE), timeout);
}
EXPORT rtError_t rtDeviceSynchronizeWithTimeout(int32_t timeout) { return device_wait(timeout); }
EXPORT rtError_t rtDeviceSynchronize(void) { return device_wait(-1); }
EXPORT rtError_t rtCtxSynchronize(void) { return device_wait(-1); }

EXPORT rtError_t rtMemcpy(void *dst, uint64_t dest_max, const void *src, uint64_t count, int kind) {
    (void)kind;
    if (current < 0)
        return ACL_ERROR_RT_CONTEXT_NULL;
    if (dst == NULL || src == NULL || count > dest_max)
        return ACL_ERROR_RT_PARAM_INVALID;
    return fake_stream_synchronize(NULL);
}
EXPORT rtError_t rtEventCreate(void **event) { return fake_create(event, sizeof(struct fake_event)); }
EXPORT rtError_t rtEventDestroy(void *event) { return fake_event_destroy(event); }
EXPORT rtError_t rtEventRecord(void *event, void *stream) { return fake_event_record(current, event, stream); }
EXPORT rtError_t rtEventQuery(void *event) { return fake_event_query(event); }
EXPORT rtError_t rtStreamQuery(void *stream) { return fake_stream_query(stream); }
EXPORT rtError_t rtEventSynchronize(void *event) { return fake_event_synchronize(event); }
EXPORT rtError_t rtEventElapsedTime(float *ms, void *start, void *end) {
    return fake_event_elapsed(ms, start, end);
}
