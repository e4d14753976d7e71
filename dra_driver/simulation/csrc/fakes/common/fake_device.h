/*
 * The simulated device behind the fake vendor runtimes (fakes/cuda, fakes/ascend): device
 * memory with a capacity and a device timeline, shared by every process through a state file, so a shim
 * preloaded into real processes can be checked from outside. Both fakes count memory and serialize work
 * through this one model; each keeps only its vendor's names, signatures and result codes.
 *
 * Include once per library, after defining the vendor's result codes: FAKE_SUCCESS,
 * FAKE_ERROR_NOT_INITIALIZED (no state loaded), FAKE_ERROR_NO_CONTEXT (no current device),
 * FAKE_ERROR_INVALID_VALUE, FAKE_ERROR_OUT_OF_MEMORY, FAKE_ERROR_BAD_FREE (not a live allocation of that
 * kind), FAKE_ERROR_NOT_READY (event not complete); and FAKE_LAST_DEFAULT_STREAM: stream handles up to
 * this value are the calling thread's default stream.
 *
 * The state file (struct fake_state; tests/support/shimlib.py FakeState reads it) holds per device the
 * bytes allocated now, their high-water mark, the timeline's end and the launch count. A launch of
 * `duration` ns reserves [max(now, busy_until), +duration] on its device's timeline with one
 * compare-and-swap, so the work of every process serializes as on a time-sliced device, and its end is
 * recorded on its stream. Events take their stream's end when recorded and are complete once
 * CLOCK_MONOTONIC passes it. A stream holds at most queue_limit_ns of queued work; a launch past that
 * waits, as a real launch waits for room in the device's queue.
 */
#ifndef XPUSHARE_FAKE_DEVICE_H
#define XPUSHARE_FAKE_DEVICE_H

#if !defined(FAKE_SUCCESS) || !defined(FAKE_ERROR_NOT_INITIALIZED) || !defined(FAKE_ERROR_NO_CONTEXT) || \
    !defined(FAKE_ERROR_INVALID_VALUE) || !defined(FAKE_ERROR_OUT_OF_MEMORY) ||                         \
    !defined(FAKE_ERROR_BAD_FREE) || !defined(FAKE_ERROR_NOT_READY) || !defined(FAKE_LAST_DEFAULT_STREAM)
#error "define the vendor's FAKE_* result codes and FAKE_LAST_DEFAULT_STREAM before fake_device.h"
#endif

#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define FAKE_MAX_DEVICES 8

struct fake_state {
    uint64_t magic;
    uint64_t allocated[FAKE_MAX_DEVICES];
    uint64_t peak[FAKE_MAX_DEVICES];
    uint64_t busy_until_ns[FAKE_MAX_DEVICES];
    uint64_t launches[FAKE_MAX_DEVICES];
};

/* A device allocation is a small host block describing it; its address is the device pointer. */
struct fake_block {
    uint64_t size;
    int dev;
    int kind;
};

struct fake_stream {
    uint64_t last_end;
};

struct fake_event {
    uint64_t time;
    int recorded;
};

/* This process's view of the devices; fake_load fills it from the environment. */
static struct fake_model {
    struct fake_state *state; /* the state file's mapping, or `own` without one; NULL before loading */
    struct fake_state own;
    int device_count;
    uint64_t capacity;       /* bytes per device */
    uint64_t queue_limit_ns; /* queued work a stream holds before a launch waits for room */
    uint64_t launch_cost_ns; /* host time every launch spins, as a real driver's launch costs */
    uint64_t last_end;       /* the end of this process's latest work on any stream */
} fake = {.device_count = 1, .capacity = 1ull << 30, .queue_limit_ns = 20000000ull};

static __thread struct fake_stream fake_thread_stream;

static inline uint64_t fake_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* FAKE_<vendor>_<what>, so each vendor's fake is configured apart from the other's. */
static inline const char *fake_env(const char *vendor, const char *what) {
    char name[64];
    snprintf(name, sizeof(name), "FAKE_%s_%s", vendor, what);
    return getenv(name);
}

static inline struct fake_state *fake_map_state(const char *path) {
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

/* Read FAKE_<vendor>_DEVICES (1 to 8), _MEMORY (bytes per device) and _STATE (the shared state file,
 * created on first use; private memory without one). */
static inline void fake_load(const char *vendor) {
    const char *v = fake_env(vendor, "DEVICES");
    if (v != NULL)
        fake.device_count = atoi(v) < 1 ? 1 : (atoi(v) > FAKE_MAX_DEVICES ? FAKE_MAX_DEVICES : atoi(v));
    if ((v = fake_env(vendor, "MEMORY")) != NULL)
        fake.capacity = strtoull(v, NULL, 10);
    const char *path = fake_env(vendor, "STATE");
    struct fake_state *s = path ? fake_map_state(path) : NULL;
    __atomic_store_n(&fake.state, s ? s : &fake.own, __ATOMIC_RELEASE);
}

static inline int fake_device_valid(int dev) { return dev >= 0 && dev < fake.device_count; }

/* Allocate `size` bytes of `kind` on `dev` if they fit under the capacity; NULL `out` is invalid. */
static inline int fake_take(int dev, uint64_t size, int kind, uintptr_t *out) {
    if (fake.state == NULL)
        return FAKE_ERROR_NOT_INITIALIZED;
    if (!fake_device_valid(dev))
        return FAKE_ERROR_NO_CONTEXT;
    if (size == 0 || out == NULL)
        return FAKE_ERROR_INVALID_VALUE;
    struct fake_state *state = fake.state;
    uint64_t used = __atomic_load_n(&state->allocated[dev], __ATOMIC_RELAXED);
    do {
        if (size > fake.capacity || used > fake.capacity - size)
            return FAKE_ERROR_OUT_OF_MEMORY;
    } while (!__atomic_compare_exchange_n(&state->allocated[dev], &used, used + size, 1, __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
    uint64_t peak = __atomic_load_n(&state->peak[dev], __ATOMIC_RELAXED);
    while (used + size > peak && !__atomic_compare_exchange_n(&state->peak[dev], &peak, used + size, 1,
                                                              __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    struct fake_block *b = malloc(sizeof(*b));
    *b = (struct fake_block){.size = size, .dev = dev, .kind = kind};
    *out = (uintptr_t)b;
    return FAKE_SUCCESS;
}

static inline int fake_give(uintptr_t handle, int kind) {
    struct fake_block *b = (struct fake_block *)handle;
    if (b == NULL || b->kind != kind)
        return FAKE_ERROR_BAD_FREE;
    __atomic_sub_fetch(&fake.state->allocated[b->dev], b->size, __ATOMIC_ACQ_REL);
    b->kind = -1;
    free(b);
    return FAKE_SUCCESS;
}

static inline int fake_mem_info(int dev, size_t *free_bytes, size_t *total_bytes) {
    if (dev < 0)
        return FAKE_ERROR_NO_CONTEXT;
    uint64_t used = __atomic_load_n(&fake.state->allocated[dev], __ATOMIC_RELAXED);
    *free_bytes = used < fake.capacity ? fake.capacity - used : 0;
    *total_bytes = fake.capacity;
    return FAKE_SUCCESS;
}

static inline struct fake_stream *fake_stream_of(void *stream) {
    return (uintptr_t)stream <= FAKE_LAST_DEFAULT_STREAM ? &fake_thread_stream : (struct fake_stream *)stream;
}

/* Sleep, then yield for the last stretch: a synchronize returns close to the work's end, as a driver's
 * spin-then-block wait does. */
static inline void fake_sleep_until(uint64_t deadline) {
    uint64_t now;
    while ((now = fake_now_ns()) < deadline) {
        if (deadline - now > 150000) {
            struct timespec ts = {0, (long)(deadline - now - 100000)};
            nanosleep(&ts, NULL);
        } else {
            sched_yield();
        }
    }
}

/* Queue `duration` ns of work on `dev` behind everyone else's. */
static inline int fake_occupy(int dev, uint64_t duration, void *stream) {
    if (dev < 0)
        return FAKE_ERROR_NO_CONTEXT;
    struct fake_stream *s = fake_stream_of(stream);
    if (s->last_end > fake_now_ns() + fake.queue_limit_ns)
        fake_sleep_until(s->last_end - fake.queue_limit_ns);
    uint64_t now = fake_now_ns(), end;
    if (fake.launch_cost_ns)
        for (uint64_t until = now + fake.launch_cost_ns; (now = fake_now_ns()) < until;)
            ;
    uint64_t *busy_until = &fake.state->busy_until_ns[dev];
    uint64_t busy = __atomic_load_n(busy_until, __ATOMIC_RELAXED);
    do {
        end = (busy > now ? busy : now) + duration;
    } while (!__atomic_compare_exchange_n(busy_until, &busy, end, 1, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
    __atomic_add_fetch(&fake.state->launches[dev], 1, __ATOMIC_RELAXED);
    __atomic_store_n(&s->last_end, end, __ATOMIC_RELEASE);
    uint64_t last = __atomic_load_n(&fake.last_end, __ATOMIC_RELAXED);
    while (last < end &&
           !__atomic_compare_exchange_n(&fake.last_end, &last, end, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    return FAKE_SUCCESS;
}

/* Streams and events are host blocks; `size` is which one. */
static inline int fake_create(void **out, size_t size) {
    if (out == NULL)
        return FAKE_ERROR_INVALID_VALUE;
    *out = calloc(1, size);
    return FAKE_SUCCESS;
}

static inline int fake_stream_destroy(void *stream) {
    if ((uintptr_t)stream > FAKE_LAST_DEFAULT_STREAM)
        free(stream);
    return FAKE_SUCCESS;
}

static inline int fake_stream_synchronize(void *stream) {
    fake_sleep_until(__atomic_load_n(&fake_stream_of(stream)->last_end, __ATOMIC_ACQUIRE));
    return FAKE_SUCCESS;
}

/* Wait for all of this process's work, on every stream. */
static inline int fake_synchronize(void) {
    fake_sleep_until(__atomic_load_n(&fake.last_end, __ATOMIC_ACQUIRE));
    return FAKE_SUCCESS;
}

static inline int fake_event_destroy(void *event) {
    free(event);
    return FAKE_SUCCESS;
}

static inline int fake_event_record(void *event, void *stream) {
    struct fake_event *e = event;
    if (e == NULL)
        return FAKE_ERROR_INVALID_VALUE;
    uint64_t now = fake_now_ns(), end = __atomic_load_n(&fake_stream_of(stream)->last_end, __ATOMIC_ACQUIRE);
    e->time = end > now ? end : now;
    e->recorded = 1;
    return FAKE_SUCCESS;
}

static inline int fake_event_query(void *event) {
    struct fake_event *e = event;
    if (e == NULL)
        return FAKE_ERROR_INVALID_VALUE;
    return !e->recorded || fake_now_ns() >= e->time ? FAKE_SUCCESS : FAKE_ERROR_NOT_READY;
}

static inline int fake_event_synchronize(void *event) {
    struct fake_event *e = event;
    if (e == NULL)
        return FAKE_ERROR_INVALID_VALUE;
    fake_sleep_until(e->time);
    return FAKE_SUCCESS;
}

static inline int fake_event_elapsed(float *ms, void *start, void *end) {
    struct fake_event *a = start, *b = end;
    if (ms == NULL || a == NULL || b == NULL || !a->recorded || !b->recorded)
        return FAKE_ERROR_INVALID_VALUE;
    if (fake_event_query(a) != FAKE_SUCCESS || fake_event_query(b) != FAKE_SUCCESS)
        return FAKE_ERROR_NOT_READY;
    *ms = (float)(((double)b->time - (double)a->time) / 1e6);
    return FAKE_SUCCESS;
}

#endif
