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
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>

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

static __thread int current = -1;

EXPORT rtError_t rtSetDevice(int32_t dev) {
    if (fake.state == NULL)
        fake_load("ASCEND");
    if (!fake_device_valid(dev))
        return ACL_ERROR_RT_PARAM_INVALID;
    current = dev;
    return RT_SUCCESS;
}

EXPORT rtError_t rtGetDevice(int32_t *dev) {
    if (current < 0)
        return ACL_ERROR_RT_CONTEXT_NULL;
    *dev = current;
    return RT_SUCCESS;
}

EXPORT rtError_t rtGetDeviceCount(int32_t *count) {
    if (fake.state == NULL)
        fake_load("ASCEND");
    *count = fake.device_count;
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
EXPORT rtError_t rtEventRecord(void *event, void *stream) { return fake_event_record(event, stream); }
EXPORT rtError_t rtEventQuery(void *event) { return fake_event_query(event); }
EXPORT rtError_t rtStreamQuery(void *stream) { return fake_stream_query(stream); }
EXPORT rtError_t rtEventSynchronize(void *event) { return fake_event_synchronize(event); }
EXPORT rtError_t rtEventElapsedTime(float *ms, void *start, void *end) {
    return fake_event_elapsed(ms, start, end);
}
