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
 *
 * With FAKE_<vendor>_TIMESLICED=1 (every process of the device alike) the device instead shares its time
 * as a GPU that time-slices its contexts does: every process with work queued progresses at the same
 * rate (processor sharing; the limit of round-robin slices as they get short), so a batch of one
 * process runs interleaved with the others' instead of after them. The model keeps a virtual time V
 * per device that advances at 1/n of real time while n processes have work: a launch of `duration` ns
 * finishes when V reaches its process's previous finish (or V, when idle) plus `duration`. Streams and
 * events carry those virtual finishes; a completed event's real time is read back from the log of
 * (real time, V) points that the model keeps at every change of n.
 *
 * With FAKE_<vendor>_SLICE_US=N as well, the time-sliced device takes turns instead, as a GPU's scheduler
 * does between contexts: the process whose turn it is runs alone until its queued work is done or its
 * N us slice ends while another has work, then the next process with work (round robin) gets a slice.
 * Each process's work is then a count of ns queued and ns run; streams and events carry the count their
 * work ends at, and a completed event's real time is read back from the process's log of (real time,
 * count) where each of its turns began. Recording an event queues 1 ns of work, so an event recorded on
 * an idle stream is stamped when its process's turn comes, not when it was recorded (a GPU running
 * another context's slice stamps it so).
 */
#ifndef XPUSHARE_FAKE_DEVICE_H
#define XPUSHARE_FAKE_DEVICE_H

#if !defined(FAKE_SUCCESS) || !defined(FAKE_ERROR_NOT_INITIALIZED) || !defined(FAKE_ERROR_NO_CONTEXT) || \
    !defined(FAKE_ERROR_INVALID_VALUE) || !defined(FAKE_ERROR_OUT_OF_MEMORY) ||                         \
    !defined(FAKE_ERROR_BAD_FREE) || !defined(FAKE_ERROR_NOT_READY) || !defined(FAKE_LAST_DEFAULT_STREAM)
#error "define the vendor's FAKE_* result codes and FAKE_LAST_DEFAULT_STREAM before fake_device.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define FAKE_MAX_DEVICES 8

#define FAKE_CONTEXTS 16
#define FAKE_LOG 2048

/* The time-sliced model of one device: processes' contexts and the (real, virtual) time log. */
struct fake_sliced {
    uint32_t lock;
    uint32_t reserved;
    uint64_t v;              /* virtual time: what one process with work all along would have done */
    uint64_t t;              /* the real time V was last brought to */
    struct {
        int32_t pid;
        uint32_t reserved;
        uint64_t finish;     /* V at which its queued work is done */
        uint64_t busy_ns;    /* real time it had work on the device */
    } ctx[FAKE_CONTEXTS];
    uint64_t nlog;
    struct {
        uint64_t t, v;
    } log[FAKE_LOG];
};

#define FAKE_TURNS 256

/* The turn-taking model of one device (FAKE_<vendor>_SLICE_US); contexts are fake_sliced's slots. */
struct fake_turns {
    uint64_t t;              /* the real time the model was last brought to */
    int32_t cur;             /* the context whose turn it is, -1 none */
    uint32_t reserved;
    uint64_t slice_end;      /* when its slice ends */
    struct {
        uint64_t queued;     /* ns of work queued, in total */
        uint64_t run;        /* ns of it run, in total */
        uint64_t nturns;
        struct {
            uint64_t t, run; /* a turn began at real time t with `run` ns run before it */
        } turn[FAKE_TURNS];
    } ctx[FAKE_CONTEXTS];
};

struct fake_state {
    uint64_t magic;
    uint64_t allocated[FAKE_MAX_DEVICES];
    uint64_t peak[FAKE_MAX_DEVICES];
    uint64_t busy_until_ns[FAKE_MAX_DEVICES];
    uint64_t launches[FAKE_MAX_DEVICES];
    struct fake_sliced sliced[FAKE_MAX_DEVICES];
    struct fake_turns turns[FAKE_MAX_DEVICES]; /* locked with sliced[dev].lock */
};

/* A device allocation is a small host block describing it; its address is the device pointer. */
struct fake_block {
    uint64_t size;
    int dev;
    int kind;
};

struct fake_stream {
    uint64_t last_end;
    uint64_t last_finish;    /* time-sliced: the virtual finish of its latest work */
    int dev;
    int capturing;           /* being captured into a graph (CUDA): launches add to `captured_ns` */
    int capture_invalid;     /* its capture was spoiled by a call not allowed during it */
    uint64_t captured_ns;    /* the device time of the work captured so far */
};

struct fake_event {
    uint64_t time;
    int recorded;
    int dev;                 /* time-sliced: the device whose virtual time `finish` is on; -1 resolved */
    uint64_t finish;
    int captured;            /* last recorded on a capturing stream: a node of its graph, not a time */
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
    int timesliced;          /* FAKE_<vendor>_TIMESLICED=1: processor sharing instead of turns */
    uint64_t slice_ns;       /* FAKE_<vendor>_SLICE_US (time-sliced): contexts take turns of this length */
    int ctx[FAKE_MAX_DEVICES]; /* time-sliced: this process's context slot per device, -1 none yet */
    int ctx_pid;             /* the process the slots were taken for (a forked child takes its own) */
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
    fake.timesliced = (v = fake_env(vendor, "TIMESLICED")) != NULL && atoi(v) == 1;
    if (fake.timesliced && (v = fake_env(vendor, "SLICE_US")) != NULL && atoll(v) > 0) {
        fake.slice_ns = (uint64_t)atoll(v) * 1000ull;
        prctl(PR_SET_TIMERSLACK, 1000ul); /* a synchronize wakes within microseconds, as a driver's does */
    }
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

/* Block until the work's end, as a driver's blocking synchronize does: sleep most of the way, then in
 * short sleeps (never spinning on sched_yield, which under CPU contention gives away the process's turn
 * and leaves the device idle until the scheduler comes back to it). */
static inline void fake_sleep_until(uint64_t deadline) {
    uint64_t now;
    while ((now = fake_now_ns()) < deadline) {
        uint64_t left = deadline - now;
        struct timespec ts = {0, (long)(left > 150000 ? left - 100000 : (left > 20000 ? left / 2 : left))};
        nanosleep(&ts, NULL);
    }
}

/* --- the time-sliced model (every call with the device's model locked) ----------------------------------- */

static inline struct fake_sliced *fake_sliced_lock(int dev) {
    struct fake_sliced *m = &fake.state->sliced[dev];
    while (__atomic_exchange_n(&m->lock, 1, __ATOMIC_ACQUIRE) != 0)
        sched_yield();
    return m;
}

static inline void fake_sliced_unlock(struct fake_sliced *m) { __atomic_store_n(&m->lock, 0, __ATOMIC_RELEASE); }

static inline void fake_sliced_log(struct fake_sliced *m) {
    uint64_t last = m->nlog > 0 ? (m->nlog - 1) % FAKE_LOG : 0;
    if (m->nlog > 0 && m->log[last].t == m->t && m->log[last].v == m->v)
        return;
    m->log[m->nlog % FAKE_LOG].t = m->t;
    m->log[m->nlog % FAKE_LOG].v = m->v;
    m->nlog++;
}

/* Bring V to `now`: n processes with work share each stretch until the next one's work is done. */
static inline void fake_sliced_advance(struct fake_sliced *m, uint64_t now) {
    if (m->t == 0 || now < m->t) {
        m->t = now > m->t ? now : m->t;
        return;
    }
    for (;;) {
        uint64_t n = 0, next = UINT64_MAX;
        for (int i = 0; i < FAKE_CONTEXTS; i++)
            if (m->ctx[i].finish > m->v) {
                n++;
                next = m->ctx[i].finish < next ? m->ctx[i].finish : next;
            }
        if (n == 0) {
            m->t = now; /* idle: V waits for the next launch */
            return;
        }
        uint64_t step = (next - m->v) * n <= now - m->t ? (next - m->v) * n : now - m->t;
        for (int i = 0; i < FAKE_CONTEXTS; i++)
            if (m->ctx[i].finish > m->v)
                m->ctx[i].busy_ns += step;
        if ((next - m->v) * n <= now - m->t) {
            m->t += (next - m->v) * n;
            m->v = next;
            fake_sliced_log(m); /* a process ran out of work: the others speed up from here */
            continue;
        }
        m->v += (now - m->t) / n;
        m->t = now;
        return;
    }
}

/* --- the turn-taking model (FAKE_<vendor>_SLICE_US; every call with the device's model locked) ---------- */

static inline struct fake_turns *fake_turns_of(const struct fake_sliced *m) {
    return &fake.state->turns[m - fake.state->sliced];
}

/* Bring the turns to `now`: the context whose turn it is runs until its work is done or its slice ends
 * while another context has work; then the next context with work, in slot order, takes a turn. */
static inline void fake_turns_advance(struct fake_sliced *m, uint64_t now) {
    struct fake_turns *r = fake_turns_of(m);
    if (r->t == 0 || now <= r->t) {
        r->t = now > r->t ? now : r->t;
        return;
    }
    while (r->t < now) {
        int c = r->cur;
        int working = c >= 0 && r->ctx[c].run < r->ctx[c].queued;
        if (!working || r->t >= r->slice_end) {
            int next = -1;
            for (int k = 1; k <= FAKE_CONTEXTS && next < 0; k++) {
                int i = (c + k + FAKE_CONTEXTS) % FAKE_CONTEXTS;
                if (r->ctx[i].run < r->ctx[i].queued)
                    next = i;
            }
            if (next < 0) {
                r->cur = -1; /* idle until the next launch */
                r->t = now;
                return;
            }
            if (next != c || !working) { /* a new turn: where it began, for the times of its work */
                uint64_t n = r->ctx[next].nturns++ % FAKE_TURNS;
                r->ctx[next].turn[n].t = r->t;
                r->ctx[next].turn[n].run = r->ctx[next].run;
            }
            r->cur = c = next;
            r->slice_end = r->t + fake.slice_ns;
        }
        uint64_t step = (now < r->slice_end ? now : r->slice_end) - r->t;
        uint64_t left = r->ctx[c].queued - r->ctx[c].run;
        step = step < left ? step : left;
        r->ctx[c].run += step;
        r->t += step;
    }
}

/* The real time context c's run count reached `finish` (known once it has), from its turns. */
static inline uint64_t fake_turns_time_of(const struct fake_turns *r, int c, uint64_t finish) {
    uint64_t n = r->ctx[c].nturns, kept = n < FAKE_TURNS ? n : FAKE_TURNS;
    for (uint64_t k = 0; k < kept; k++) {
        uint64_t i = (n - 1 - k) % FAKE_TURNS;
        if (r->ctx[c].turn[i].run < finish)
            return r->ctx[c].turn[i].t + (finish - r->ctx[c].turn[i].run);
    }
    return r->t; /* older than the log */
}

/* --- both time-sliced models ----------------------------------------------------------------------------- */

static inline void fake_model_advance(struct fake_sliced *m, uint64_t now) {
    if (fake.slice_ns)
        fake_turns_advance(m, now);
    else
        fake_sliced_advance(m, now);
}

/* The real time V reached `finish` (known once it has), from the log and the latest point. */
static inline uint64_t fake_sliced_time_of(const struct fake_sliced *m, uint64_t finish) {
    uint64_t t2 = m->t, v2 = m->v;
    uint64_t kept = m->nlog < FAKE_LOG ? m->nlog : FAKE_LOG;
    for (uint64_t k = 0; k < kept; k++) {
        uint64_t i = (m->nlog - 1 - k) % FAKE_LOG;
        uint64_t t1 = m->log[i].t, v1 = m->log[i].v;
        if (v1 < finish)
            return v2 > v1 ? t1 + (uint64_t)((double)(finish - v1) * (double)(t2 - t1) / (double)(v2 - v1)) : t2;
        t2 = t1, v2 = v1;
    }
    return t2; /* older than the log: its earliest point */
}

/* Taking turns, a slot's counts are its process's for as long as it lives: free once it has exited and
 * its work has run (a live process idle between batches keeps it). */
static inline int fake_slot_free(const struct fake_turns *r, int slot, int pid) {
    return r->ctx[slot].run >= r->ctx[slot].queued && kill(pid, 0) != 0 && errno == ESRCH;
}

/* This process's context on the device, taking a free one (or one with no work left) the first time. */
static inline int fake_sliced_context(struct fake_sliced *m, int dev) {
    int pid = (int)getpid();
    if (fake.ctx_pid != pid) {
        for (int d = 0; d < FAKE_MAX_DEVICES; d++)
            fake.ctx[d] = -1;
        fake.ctx_pid = pid;
    }
    if (fake.ctx[dev] >= 0 && m->ctx[fake.ctx[dev]].pid == pid)
        return fake.ctx[dev];
    int slot = -1;
    for (int i = 0; i < FAKE_CONTEXTS && slot < 0; i++)
        if (m->ctx[i].pid == pid)
            slot = i;
    for (int i = 0; i < FAKE_CONTEXTS && slot < 0; i++)
        if (m->ctx[i].pid == 0 || (fake.slice_ns ? fake_slot_free(fake_turns_of(m), i, m->ctx[i].pid)
                                                  : m->ctx[i].finish <= m->v))
            slot = i; /* no process, or one with no work left (taking turns: that has exited) */
    slot = slot < 0 ? 0 : slot; /* more processes than contexts: the last ones share the first */
    m->ctx[slot].pid = pid;
    fake.ctx[dev] = slot;
    return slot;
}

/* How far the calling process's work has got, in the units its finishes are in: the device's virtual
 * time (processor sharing), or the ns of its own work run so far (turns). */
static inline uint64_t fake_progress_locked(struct fake_sliced *m, int dev) {
    return fake.slice_ns ? fake_turns_of(m)->ctx[fake_sliced_context(m, dev)].run : m->v;
}

static inline uint64_t fake_sliced_now(int dev) {
    struct fake_sliced *m = fake_sliced_lock(dev);
    fake_model_advance(m, fake_now_ns());
    uint64_t v = fake_progress_locked(m, dev);
    fake_sliced_unlock(m);
    return v;
}

/* Wait until the device's virtual time reaches `finish`. */
static inline void fake_sliced_wait(int dev, uint64_t finish) {
    for (;;) {
        struct fake_sliced *m = fake_sliced_lock(dev);
        fake_model_advance(m, fake_now_ns());
        uint64_t step = 50000, progress = fake_progress_locked(m, dev);
        if (fake.slice_ns && progress < finish) { /* its turn now: sleep until its work is done, if in it */
            const struct fake_turns *r = fake_turns_of(m);
            uint64_t left = finish - progress;
            if (r->cur == fake.ctx[dev] && r->t + left <= r->slice_end && left < step)
                step = left;
        }
        fake_sliced_unlock(m);
        if (progress >= finish)
            return;
        struct timespec ts = {0, (long)step};
        nanosleep(&ts, NULL);
    }
}

/* Queue `duration` ns of the calling process's work; returns the finish it ends at. */
static inline uint64_t fake_queue_locked(struct fake_sliced *m, int dev, uint64_t duration) {
    fake_model_advance(m, fake_now_ns());
    int c = fake_sliced_context(m, dev);
    if (fake.slice_ns) {
        struct fake_turns *r = fake_turns_of(m);
        r->ctx[c].queued += duration;
        return r->ctx[c].queued;
    }
    fake_sliced_log(m); /* one more process may have work from here on */
    uint64_t start = m->ctx[c].finish > m->v ? m->ctx[c].finish : m->v;
    m->ctx[c].finish = start + duration;
    return m->ctx[c].finish;
}

static inline int fake_sliced_occupy(int dev, uint64_t duration, struct fake_stream *s) {
    if (s->last_finish > 0 && s->dev == dev) /* room in the queue: at most queue_limit_ns ahead */
        while (s->last_finish > fake_sliced_now(dev) + fake.queue_limit_ns) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
    if (fake.launch_cost_ns)
        for (uint64_t until = fake_now_ns() + fake.launch_cost_ns; fake_now_ns() < until;)
            ;
    struct fake_sliced *m = fake_sliced_lock(dev);
    uint64_t finish = fake_queue_locked(m, dev, duration);
    fake_sliced_unlock(m);
    __atomic_add_fetch(&fake.state->launches[dev], 1, __ATOMIC_RELAXED);
    s->last_finish = finish;
    s->dev = dev;
    return FAKE_SUCCESS;
}

/* Queue `duration` ns of work on `dev` behind everyone else's. */
static inline int fake_occupy(int dev, uint64_t duration, void *stream) {
    if (dev < 0)
        return FAKE_ERROR_NO_CONTEXT;
    struct fake_stream *s = fake_stream_of(stream);
    if (s->capturing) { /* recorded into the graph, run when it is launched */
        s->captured_ns += duration;
        return FAKE_SUCCESS;
    }
    if (fake.timesliced)
        return fake_sliced_occupy(dev, duration, s);
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
    struct fake_stream *s = fake_stream_of(stream);
    if (fake.timesliced) {
        if (s->last_finish > 0)
            fake_sliced_wait(s->dev, s->last_finish);
        return FAKE_SUCCESS;
    }
    fake_sleep_until(__atomic_load_n(&fake_stream_of(stream)->last_end, __ATOMIC_ACQUIRE));
    return FAKE_SUCCESS;
}

/* Whether the stream's work is done. */
static inline int fake_stream_query(void *stream) {
    struct fake_stream *s = fake_stream_of(stream);
    if (fake.timesliced)
        return s->last_finish == 0 || fake_sliced_now(s->dev) >= s->last_finish ? FAKE_SUCCESS : FAKE_ERROR_NOT_READY;
    return fake_now_ns() >= __atomic_load_n(&s->last_end, __ATOMIC_ACQUIRE) ? FAKE_SUCCESS : FAKE_ERROR_NOT_READY;
}

/* Wait for all of this process's work, on every stream. */
static inline int fake_synchronize(void) {
    if (fake.timesliced) {
        for (int d = 0; d < fake.device_count; d++) {
            struct fake_sliced *m = fake_sliced_lock(d);
            int c = fake.ctx_pid == (int)getpid() ? fake.ctx[d] : -1;
            uint64_t finish = 0;
            if (c >= 0 && m->ctx[c].pid == (int)getpid())
                finish = fake.slice_ns ? fake_turns_of(m)->ctx[c].queued : m->ctx[c].finish;
            fake_sliced_unlock(m);
            if (finish > 0)
                fake_sliced_wait(d, finish);
        }
        return FAKE_SUCCESS;
    }
    fake_sleep_until(__atomic_load_n(&fake.last_end, __ATOMIC_ACQUIRE));
    return FAKE_SUCCESS;
}

static inline int fake_event_destroy(void *event) {
    free(event);
    return FAKE_SUCCESS;
}

/* `dev`: the calling thread's current device (where an event on a stream without work yet is recorded). */
static inline int fake_event_record(int dev, void *event, void *stream) {
    struct fake_event *e = event;
    if (e == NULL)
        return FAKE_ERROR_INVALID_VALUE;
    struct fake_stream *s = fake_stream_of(stream);
    uint64_t now = fake_now_ns(), end = __atomic_load_n(&s->last_end, __ATOMIC_ACQUIRE);
    e->time = end > now ? end : now;
    e->recorded = 1;
    e->dev = -1;
    e->captured = s->capturing;
    if (e->captured)
        return FAKE_SUCCESS;
    dev = s->last_finish > 0 ? s->dev : dev;
    if (fake.slice_ns && fake_device_valid(dev)) { /* 1 ns of work: stamped at its process's turn */
        struct fake_sliced *m = fake_sliced_lock(dev);
        e->finish = fake_queue_locked(m, dev, 1);
        e->dev = dev;
        fake_sliced_unlock(m);
        s->last_finish = e->finish;
        s->dev = dev;
        return FAKE_SUCCESS;
    }
    if (fake.timesliced && s->last_finish > 0) {
        struct fake_sliced *m = fake_sliced_lock(s->dev);
        fake_sliced_advance(m, now);
        if (m->v < s->last_finish) { /* its work is still running: resolved by the query that sees it done */
            e->dev = s->dev;
            e->finish = s->last_finish;
        }
        fake_sliced_unlock(m);
    }
    return FAKE_SUCCESS;
}

/* Time-sliced: whether the event's work is done, its real time filled in when it is. */
static inline int fake_sliced_resolve(struct fake_event *e) {
    if (e->dev < 0)
        return 1;
    struct fake_sliced *m = fake_sliced_lock(e->dev);
    fake_model_advance(m, fake_now_ns());
    int done = fake_progress_locked(m, e->dev) >= e->finish;
    if (done) {
        e->time = fake.slice_ns ? fake_turns_time_of(fake_turns_of(m), fake_sliced_context(m, e->dev), e->finish)
                                : fake_sliced_time_of(m, e->finish);
        e->dev = -1;
    }
    fake_sliced_unlock(m);
    return done;
}

static inline int fake_event_query(void *event) {
    struct fake_event *e = event;
    if (e == NULL)
        return FAKE_ERROR_INVALID_VALUE;
    if (e->recorded && e->dev >= 0)
        return fake_sliced_resolve(e) ? FAKE_SUCCESS : FAKE_ERROR_NOT_READY;
    return !e->recorded || fake_now_ns() >= e->time ? FAKE_SUCCESS : FAKE_ERROR_NOT_READY;
}

static inline int fake_event_synchronize(void *event) {
    struct fake_event *e = event;
    if (e == NULL)
        return FAKE_ERROR_INVALID_VALUE;
    if (e->recorded && e->dev >= 0) {
        while (!fake_sliced_resolve(e)) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
        return FAKE_SUCCESS;
    }
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
