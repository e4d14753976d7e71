/*
 * A fake Ascend runtime (libruntime.so, the RTS layer under ACL): device memory with a capacity and a
 * device timeline shared by all processes through a state file, like tests/fakes/cuda.
 *
 * Environment: FAKE_ASCEND_STATE (shared state file), FAKE_ASCEND_DEVICES (default 1, at most 8),
 * FAKE_ASCEND_MEMORY (bytes per device, default 1 GiB). Out of memory answers
 * ACL_ERROR_RT_MEMORY_ALLOCATION (207001), as the rt API does. Launches occupy `blockDim` ns of the
 * shared device timeline (serialized with every process's work, like tests/fakes/cuda) and record their
 * end on their stream; rt events (rtEventRecord/Query/ElapsedTime/Synchronize) and rtStreamSynchronize
 * compare that end with CLOCK_MONOTONIC. A NULL stream is the calling thread's default stream.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define MAX_DEVICES 8
#define RT_SUCCESS 0
#define ACL_ERROR_RT_PARAM_INVALID 107000
#define ACL_ERROR_RT_CONTEXT_NULL 107002
#define ACL_ERROR_RT_MEMORY_ALLOCATION 207001
#define ACL_ERROR_RT_MEMORY_FREE 207002
#define ACL_ERROR_RT_EVENT_NOT_COMPLETE 507006

typedef int rtError_t;

struct fake_state {
    uint64_t magic;
    uint64_t allocated[MAX_DEVICES];
    uint64_t peak[MAX_DEVICES];
    uint64_t busy_until_ns[MAX_DEVICES];
    uint64_t launches[MAX_DEVICES];
};

struct block {
    uint64_t size;
    int dev;
    int kind;
};

static struct fake_state *state;
static int device_count = 1;
static uint64_t capacity = 1ull << 30;
static __thread int current = -1;

static void load(void) {
    static struct fake_state private_state;
    const char *v = getenv("FAKE_ASCEND_DEVICES");
    if (v != NULL)
        device_count = atoi(v) < 1 ? 1 : (atoi(v) > MAX_DEVICES ? MAX_DEVICES : atoi(v));
    if ((v = getenv("FAKE_ASCEND_MEMORY")) != NULL)
        capacity = strtoull(v, NULL, 10);
    const char *path = getenv("FAKE_ASCEND_STATE");
    int fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666) : -1;
    if (fd >= 0) {
        flock(fd, LOCK_EX);
        int grown = lseek(fd, 0, SEEK_END) >= (off_t)sizeof(struct fake_state) ||
                    ftruncate(fd, sizeof(struct fake_state)) == 0;
        flock(fd, LOCK_UN);
        void *p = grown ? mmap(NULL, sizeof(struct fake_state), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                        : MAP_FAILED;
        close(fd);
        state = p == MAP_FAILED ? NULL : p;
    }
    if (state == NULL)
        state = &private_state;
}

EXPORT rtError_t rtSetDevice(int32_t dev) {
    if (state == NULL)
        load();
    if (dev < 0 || dev >= device_count)
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
    if (state == NULL)
        load();
    *count = device_count;
    return RT_SUCCESS;
}

static rtError_t take(int dev, uint64_t size, int kind, void **out) {
    if (dev < 0)
        return ACL_ERROR_RT_CONTEXT_NULL;
    if (size == 0 || out == NULL)
        return ACL_ERROR_RT_PARAM_INVALID;
    uint64_t used = __atomic_load_n(&state->allocated[dev], __ATOMIC_RELAXED);
    do {
        if (size > capacity || used > capacity - size)
            return ACL_ERROR_RT_MEMORY_ALLOCATION;
    } while (!__atomic_compare_exchange_n(&state->allocated[dev], &used, used + size, 1, __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
    uint64_t peak = __atomic_load_n(&state->peak[dev], __ATOMIC_RELAXED);
    while (used + size > peak && !__atomic_compare_exchange_n(&state->peak[dev], &peak, used + size, 1,
                                                              __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    struct block *b = malloc(sizeof(*b));
    *b = (struct block){.size = size, .dev = dev, .kind = kind};
    *out = b;
    return RT_SUCCESS;
}

static rtError_t give(void *p, int kind) {
    struct block *b = p;
    if (b == NULL || b->kind != kind)
        return ACL_ERROR_RT_MEMORY_FREE;
    __atomic_sub_fetch(&state->allocated[b->dev], b->size, __ATOMIC_ACQ_REL);
    b->kind = -1;
    free(b);
    return RT_SUCCESS;
}

EXPORT rtError_t rtMalloc(void **ptr, uint64_t size, uint32_t type, uint16_t module) {
    (void)type, (void)module;
    return take(current, size, 1, ptr);
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
    return take(current, size, 2, handle);
}
EXPORT rtError_t rtFree(void *ptr) { return give(ptr, 1); }
EXPORT rtError_t rtDvppFree(void *ptr) { return give(ptr, 1); }
EXPORT rtError_t rtMemFreeManaged(void *ptr) { return give(ptr, 1); }
EXPORT rtError_t rtFreePhysical(void *handle) { return give(handle, 2); }

EXPORT rtError_t rtMemGetInfoEx(uint32_t type, size_t *free_bytes, size_t *total_bytes) {
    (void)type;
    if (current < 0)
        return ACL_ERROR_RT_CONTEXT_NULL;
    uint64_t used = __atomic_load_n(&state->allocated[current], __ATOMIC_RELAXED);
    *free_bytes = used < capacity ? capacity - used : 0;
    *total_bytes = capacity;
    return RT_SUCCESS;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct fake_stream {
    uint64_t last_end;
};
struct fake_event {
    uint64_t time;
    int recorded;
};
static __thread struct fake_stream thread_stream;

static struct fake_stream *stream_of(void *s) {
    return s == NULL ? &thread_stream : (struct fake_stream *)s;
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

static rtError_t occupy(uint64_t duration, void *stream) {
    if (current < 0)
        return ACL_ERROR_RT_CONTEXT_NULL;
    struct fake_stream *s = stream_of(stream);
    if (s->last_end > now_ns() + 20000000ull)
        sleep_until(s->last_end - 20000000ull); /* a bounded task queue, as on the device */
    uint64_t now = now_ns(), end;
    uint64_t busy = __atomic_load_n(&state->busy_until_ns[current], __ATOMIC_RELAXED);
    do {
        end = (busy > now ? busy : now) + duration;
    } while (!__atomic_compare_exchange_n(&state->busy_until_ns[current], &busy, end, 1, __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
    __atomic_add_fetch(&state->launches[current], 1, __ATOMIC_RELAXED);
    __atomic_store_n(&s->last_end, end, __ATOMIC_RELEASE);
    return RT_SUCCESS;
}

EXPORT rtError_t rtKernelLaunch(const void *stub, uint32_t dim, void *args, uint32_t size, void *sm, void *s) {
    (void)stub, (void)args, (void)size, (void)sm;
    return occupy(dim, s);
}
EXPORT rtError_t rtKernelLaunchWithHandleV2(void *h, uint64_t key, uint32_t dim, void *args, void *sm, void *s,
                                            const void *cfg) {
    (void)h, (void)key, (void)args, (void)sm, (void)cfg;
    return occupy(dim, s);
}
EXPORT rtError_t rtKernelLaunchWithFlagV2(const void *stub, uint32_t dim, void *args, void *sm, void *s,
                                          uint32_t flags, const void *cfg) {
    (void)stub, (void)args, (void)sm, (void)flags, (void)cfg;
    return occupy(dim, s);
}
EXPORT rtError_t rtModelExecute(void *model, void *s, uint32_t flag) {
    (void)model, (void)flag;
    return occupy(1000, s);
}

EXPORT rtError_t rtStreamCreate(void **stream, int32_t priority) {
    (void)priority;
    if (stream == NULL)
        return ACL_ERROR_RT_PARAM_INVALID;
    *stream = calloc(1, sizeof(struct fake_stream));
    return RT_SUCCESS;
}
EXPORT rtError_t rtStreamSynchronize(void *stream) {
    sleep_until(__atomic_load_n(&stream_of(stream)->last_end, __ATOMIC_ACQUIRE));
    return RT_SUCCESS;
}
EXPORT rtError_t rtEventCreate(void **event) {
    if (event == NULL)
        return ACL_ERROR_RT_PARAM_INVALID;
    *event = calloc(1, sizeof(struct fake_event));
    return RT_SUCCESS;
}
EXPORT rtError_t rtEventDestroy(void *event) {
    free(event);
    return RT_SUCCESS;
}
EXPORT rtError_t rtEventRecord(void *event, void *stream) {
    struct fake_event *e = event;
    if (e == NULL)
        return ACL_ERROR_RT_PARAM_INVALID;
    uint64_t now = now_ns(), end = __atomic_load_n(&stream_of(stream)->last_end, __ATOMIC_ACQUIRE);
    e->time = end > now ? end : now;
    e->recorded = 1;
    return RT_SUCCESS;
}
EXPORT rtError_t rtEventQuery(void *event) {
    struct fake_event *e = event;
    if (e == NULL)
        return ACL_ERROR_RT_PARAM_INVALID;
    return !e->recorded || now_ns() >= e->time ? RT_SUCCESS : ACL_ERROR_RT_EVENT_NOT_COMPLETE;
}
EXPORT rtError_t rtEventSynchronize(void *event) {
    struct fake_event *e = event;
    if (e == NULL)
        return ACL_ERROR_RT_PARAM_INVALID;
    sleep_until(e->time);
    return RT_SUCCESS;
}
EXPORT rtError_t rtEventElapsedTime(float *ms, void *start, void *end) {
    struct fake_event *a = start, *b = end;
    if (ms == NULL || a == NULL || b == NULL || !a->recorded || !b->recorded)
        return ACL_ERROR_RT_PARAM_INVALID;
    if (rtEventQuery(a) != RT_SUCCESS || rtEventQuery(b) != RT_SUCCESS)
        return ACL_ERROR_RT_EVENT_NOT_COMPLETE;
    *ms = (float)(((double)b->time - (double)a->time) / 1e6);
    return RT_SUCCESS;
}
