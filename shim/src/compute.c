/*
 * compute.c - the compute share at launch boundaries: events on the streams a process launches on measure
 * its device time, which is charged to its claim's bucket in the claim's ledger (shares.c holds the rule);
 * a launch that the rule holds back waits here, in the launching thread, sleeping in short steps.
 *
 * Hot path: a launch decrements a thread-local countdown and compares its stream with the thread's last
 * one. When the countdown runs out (about every CHECK_NS of launching, at every launch when launches are
 * slow, and at the first launch after a synchronize) the slow path reads the clock, polls events without
 * blocking, charges what completed, takes a changed quota from the board (so a quota change applies at
 * the next check), reads its peers' activity (at most every XPUSHARE_PEERS_REFRESH_NS) and applies the
 * rule. An event is recorded after a launch
 * at most every RECORD_NS per thread, on the streams launched on since the last one, and before every
 * synchronize or synchronous copy the application makes (so events mark the ends of its batches);
 * nothing here ever synchronizes the device.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define CHECK_NS 200000ull        /* slow path about every 200 us per launching thread */
#define SPAN_MAX 256
#define RECORD_NS 500000ull       /* an event per thread at most every 0.5 ms of launching */
#define MAX_EVENTS 48
#define RING 32
#define MAX_INFLIGHT 8            /* unobserved events before a launch waits for the oldest */
#define INFLIGHT_WAIT_NS 50000ull
#define CUDA_ERROR_NOT_READY 600
#define ACL_ERROR_RT_EVENT_NOT_COMPLETE 507006
#define CU_EVENT_DEFAULT 0
#define REANCHOR_NS 1000000000ull /* a completed event older than this is no reference for a new period */
#define RECHECKS 16               /* windows awaiting their peers' charges, at most */
#define RECHECK_NS 50000000ull    /* ... for this long after their own charge */
#define RECHECK_EVERY_NS 1000000ull /* and looked at again at most this often (peers' heads: 1 ms old) */

/* A window of this process's device time charged while others' work in it was not charged yet. */
struct xps_recheck {
    uint64_t start, end, charged, at;
};

struct xps_comp {
    pthread_mutex_t mu;
    int failed;                 /* events unusable on this device: accounting off */
    void *events[MAX_EVENTS];
    int nevents, free_list[MAX_EVENTS], nfree;
    int ring[RING], head, count;
    uint64_t recorded[MAX_EVENTS]; /* clock of the first launch each event covers */
    uint64_t seq[MAX_EVENTS];       /* when each was recorded, counted: tells a reused event apart */
    int marker[MAX_EVENTS];         /* recorded before a busy period's first launch: covers no work */
    uint64_t nseq;
    uint64_t uncovered_since;       /* clock of the oldest launch not covered by an event, 0 if none */
    int ref;                    /* event with the latest completion seen, -1 none */
    uint64_t ref_ns;            /* its completion on CLOCK_MONOTONIC */
    int pending;
    int uncovered;              /* threads with launches not yet covered by an event (under mu) */
    int timesliced;             /* the device time-slices contexts (limits file): share, not order */
    struct xps_recheck rechecks[RECHECKS];
    int nrechecks;
    uint64_t rechecked_ns;      /* when they were last looked at */
};

__thread struct xps_thread xps__thread __attribute__((tls_model("initial-exec"))) = {.dev = -1};
int xps__compute_enabled;
static struct xps_comp comps[XPUSHARE_MAX_DEVICES];
static pthread_key_t exit_key;

/* A thread that exits with launches no event covers would keep its process counted as busy: uncount it. */
static void on_thread_exit(void *unused) {
    (void)unused;
    struct xps_thread *t = &xps__thread;
    if (t->dev < 0 || !t->uncovered)
        return;
    struct xps_comp *c = &comps[t->dev];
    pthread_mutex_lock(&c->mu);
    if (c->uncovered > 0 && --c->uncovered == 0)
        c->uncovered_since = 0;
    pthread_mutex_unlock(&c->mu);
    t->uncovered = 0;
}

void xps__compute_init(const struct xps_limits *limits) {
    for (int i = 0; i < XPUSHARE_MAX_DEVICES; i++) {
        pthread_mutex_init(&comps[i].mu, NULL);
        comps[i].ref = -1;
    }
    pthread_key_create(&exit_key, on_thread_exit);
    if (limits->count > 0)
        __atomic_store_n(&xps__compute_enabled, 1, __ATOMIC_RELEASE);
}

/* --- vendor calls (real functions, guarded) ----------------------------------------------------------- */

typedef int (*cu_create_fn)(void **, unsigned);
typedef int (*rt_create_fn)(void **);
typedef int (*record_fn)(void *, void *);
typedef int (*query_fn)(void *);
typedef int (*elapsed_fn)(float *, void *, void *);

#define SYM(vendor, cu, rt) xps__real_fn((vendor) == XPS_VENDOR_CUDA ? XPS_SYM_##cu : XPS_SYM_##rt)

static int event_create(enum xps_vendor vendor, void **ev) {
    if (vendor == XPS_VENDOR_CUDA) {
        cu_create_fn fn = (cu_create_fn)xps__real_fn(XPS_SYM_cuEventCreate);
        return fn ? XPS_GUARDED(fn(ev, CU_EVENT_DEFAULT)) : -1;
    }
    rt_create_fn fn = (rt_create_fn)xps__real_fn(XPS_SYM_rtEventCreate);
    return fn ? XPS_GUARDED(fn(ev)) : -1;
}

/* A _ptsz launch's NULL stream arrives here as CU_STREAM_PER_THREAD (cuda.c), valid for cuEventRecord. */
static int event_record(enum xps_vendor vendor, void *ev, void *stream) {
    record_fn fn = (record_fn)SYM(vendor, cuEventRecord, rtEventRecord);
    return fn ? XPS_GUARDED(fn(ev, stream)) : -1;
}

/* 0 complete, 1 not yet, -1 error. */
static int event_query(enum xps_vendor vendor, void *ev) {
    query_fn fn = (query_fn)SYM(vendor, cuEventQuery, rtEventQuery);
    int rc = fn ? XPS_GUARDED(fn(ev)) : -1;
    if (rc == 0)
        return 0;
    return rc == (vendor == XPS_VENDOR_CUDA ? CUDA_ERROR_NOT_READY : ACL_ERROR_RT_EVENT_NOT_COMPLETE) ? 1 : -1;
}

static int64_t event_elapsed_ns(enum xps_vendor vendor, void *start, void *end) {
    elapsed_fn fn = (elapsed_fn)SYM(vendor, cuEventElapsedTime, rtEventElapsedTime);
    float ms = 0;
    if (fn == NULL || XPS_GUARDED(fn(&ms, start, end)) != 0)
        return -1;
    return (int64_t)((double)ms * 1e6);
}

/* --- event pool and ring (with comp->mu held) ---------------------------------------------------------- */

static int take_event(struct xps_comp *c, enum xps_vendor vendor) {
    if (c->nfree > 0)
        return c->free_list[--c->nfree];
    if (c->nevents >= MAX_EVENTS)
        return -1;
    if (event_create(vendor, &c->events[c->nevents]) != 0) {
        if (c->nevents == 0) {
            c->failed = 1;
            xps__warn("cannot create timing events: compute share not enforced in this process");
        }
        return -1;
    }
    return c->nevents++;
}

static void give_event(struct xps_comp *c, int e) {
    if (e >= 0 && c->nfree < MAX_EVENTS)
        c->free_list[c->nfree++] = e;
}

/* Publish when this process's oldest work not yet charged was launched (others' completions wait for it). */
static void publish_oldest(struct xps_comp *c, struct xpushare_ledger *ledger, int proc) {
    uint64_t oldest = c->count > 0 ? c->recorded[c->ring[c->head]] : 0;
    if (c->uncovered_since != 0 && (oldest == 0 || c->uncovered_since < oldest))
        oldest = c->uncovered_since;
    xpushare_compute_publish(ledger, proc, oldest);
}

/* The event recorded after `since`'s launches on `stream` (a marker: before any), or -1. */
static int record_into_ring(struct xps_comp *c, enum xps_vendor vendor, void *stream, uint64_t since,
                            int marker) {
    if (c->count >= RING)
        return -1;
    int e = take_event(c, vendor);
    if (e < 0)
        return -1;
    if (event_record(vendor, c->events[e], stream) != 0) {
        give_event(c, e);
        return -1;
    }
    c->recorded[e] = since;
    c->seq[e] = ++c->nseq;
    c->marker[e] = marker;
    c->ring[(c->head + c->count++) % RING] = e;
    return e;
}

/*
 * A completed marker moves the reference to the time the device reached it: when this context's turn
 * came, on a GPU that was running another context's slice when the busy period began. The work after
 * it is charged from there, not from its launch: the wait for the other context's turn to end was that
 * context's device time, and charging part of it here (the time-sliced rule shares a window with
 * whoever had work in it) gave a claim whose batches run whole in one turn less than it used.
 */
static void take_marker(struct xps_comp *c, enum xps_vendor vendor, int e, uint64_t now) {
    int64_t ns = c->ref >= 0 ? event_elapsed_ns(vendor, c->events[c->ref], c->events[e]) : -1;
    if (ns < 0) {
        give_event(c, e);
        return;
    }
    uint64_t at = c->ref_ns + (uint64_t)ns, seen = xps__clock_ns();
    seen = seen > now ? seen : now;
    at = at < c->recorded[e] ? c->recorded[e] : at; /* never before it was recorded ... */
    at = at > seen ? seen : at;                     /* ... nor after it was seen complete */
    give_event(c, c->ref);
    c->ref = e;
    c->ref_ns = at;
}

/*
 * The device time an event's work occupied, on CLOCK_MONOTONIC: from the later of the previous completion
 * and the first launch it covers, to its completion. A device's timestamps are not trusted to agree with
 * the clock (an event recorded on an idle stream may carry an earlier time, which shifts every elapsed
 * time measured from it): the completion is kept between that start and `now`, when it was observed.
 */
static void window_of(const struct xps_comp *c, int e, int64_t elapsed, uint64_t now, uint64_t *start,
                      uint64_t *end) {
    uint64_t from = c->ref_ns > c->recorded[e] ? c->ref_ns : c->recorded[e];
    uint64_t until = c->ref_ns + (uint64_t)elapsed;
    *start = from < now ? from : now;
    *end = until > now ? now : (until < *start ? *start : until);
}

/*
 * Windows charged while others' work in them was not charged yet, charged again once it is. That work
 * was counted as running beside this process's from its launch, as on a device sharing its time at every
 * instant. A GPU giving contexts turns may instead have run it only after this window: its owner's window
 * then starts later (take_marker), and this one is charged the rest of its length. A window whose share
 * only shrank keeps its charge; one still open after RECHECK_NS keeps it too.
 */
static uint64_t recheck(struct xps_comp *c, struct xpushare_ledger *ledger, int proc,
                        const struct xpushare_peers *peers, uint64_t now) {
    uint64_t extra = 0;
    int kept = 0;
    for (int i = 0; i < c->nrechecks; i++) {
        struct xps_recheck r = c->rechecks[i];
        int open = 0;
        uint64_t share = xps__ledger_share(ledger, proc, peers, r.start, r.end, &open);
        if (!open)
            extra += share > r.charged ? share - r.charged : 0;
        else if (now - r.at < RECHECK_NS)
            c->rechecks[kept++] = r;
    }
    c->nrechecks = kept;
    return extra;
}

/* Completed events, in record order: the device time each one's work occupied, charged to the claim.
 * Serial devices (work runs in turns): the interval past the latest completion any claim was charged
 * for (what another process already got of it is not charged twice). Time-sliced devices: the window,
 * shared with every other context that had work on the device in it (xpushare_ledger_share). */
static uint64_t collect(struct xps_comp *c, struct xpushare_ledger *ledger, int proc, enum xps_vendor vendor,
                        uint64_t now, uint64_t prompt) {
    uint64_t charged = 0;
    /* Fresh: whether a peer still has older uncharged work, and up to when it charged, decide this. */
    const struct xpushare_peers *peers = c->count > 0 ? xps__peers((int)(c - comps), now, 1) : NULL;
    while (c->count > 0) {
        int e = c->ring[c->head];
        int q = event_query(vendor, c->events[e]);
        if (q == 1)
            break;
        if (c->marker[e]) {
            c->head = (c->head + 1) % RING;
            c->count--;
            if (q == 0)
                take_marker(c, vendor, e, now);
            else
                give_event(c, e);
            continue;
        }
        if (q == 0 && !c->timesliced && now - c->recorded[e] < XPUSHARE_PUBLISH_WAIT_NS &&
            xpushare_compute_earlier_work(ledger, proc, peers, c->recorded[e]) == 1)
            break; /* work recorded before ours ran first: let its owner charge it first */
        int64_t ns = q == 0 && c->ref >= 0 ? event_elapsed_ns(vendor, c->events[c->ref], c->events[e]) : -1;
        c->head = (c->head + 1) % RING;
        c->count--;
        if (q == 0 && c->ref >= 0 && ns > 0) {
            uint64_t start, end, seen = xps__clock_ns(); /* after the query: it may have just completed */
            window_of(c, e, ns, seen > now ? seen : now, &start, &end);
            if (prompt != 0 && c->seq[e] == prompt && seen > start)
                end = seen; /* the synchronize that waited for it just returned: it completed now */
            if (c->timesliced) {
                int open = 0;
                uint64_t share = xps__ledger_share(ledger, proc, peers, start, end, &open);
                charged += share;
                xpushare_window_publish(ledger, proc, start, end);
                if (open && c->nrechecks < RECHECKS)
                    c->rechecks[c->nrechecks++] = (struct xps_recheck){start, end, share, now};
            } else {
                charged += xpushare_ledger_attribute(ledger, peers, start, end);
            }
            give_event(c, c->ref);
            c->ref = e;
            c->ref_ns = end;
        } else {
            give_event(c, e); /* completed before the reference (another stream), or failed */
        }
    }
    if (c->nrechecks > 0 && (now < c->rechecked_ns || now - c->rechecked_ns >= RECHECK_EVERY_NS)) {
        charged += recheck(c, ledger, proc, peers != NULL ? peers : xps__peers((int)(c - comps), now, 0), now);
        c->rechecked_ns = now;
    }
    publish_oldest(c, ledger, proc);
    return charged;
}

/* Charge what completed; publish whether this process still has work on the device. `prompt`: the
 * sequence number of an event a synchronize returning just now waited for (0: none). */
static void settle_prompt(struct xps_comp *c, struct xpushare_ledger *ledger, int proc, enum xps_vendor vendor,
                          uint64_t now, uint64_t prompt) {
    uint64_t charged = collect(c, ledger, proc, vendor, now, prompt);
    if (charged > 0)
        xpushare_ledger_charge(ledger, proc, charged);
    int busy = c->count > 0 || c->uncovered > 0;
    if (busy != c->pending && xpushare_compute_pending(ledger, proc, busy) == 0)
        c->pending = busy;
}

static void settle(struct xps_comp *c, struct xpushare_ledger *ledger, int proc, enum xps_vendor vendor,
                   uint64_t now) {
    settle_prompt(c, ledger, proc, vendor, now, 0);
}

/*
 * From idle to busy. Completion times are the reference event's time plus elapsed times, so the new busy
 * period needs a reference. The last completed event serves while it is recent (REANCHOR_NS): its time
 * was measured, and elapsed times between a context's events hold across idle stretches. Otherwise an
 * event recorded on the idle stream anchors the period at the clock read right before recording it.
 * That anchor is only as good as the event completing at once, which a device does not promise: a GPU
 * that is running another context's time slice stamps it when this context's turn comes (up to a slice
 * later), and some devices stamp an idle stream's event with the end of its last work.
 */
static void start_busy(struct xps_comp *c, struct xpushare_ledger *ledger, int proc, enum xps_vendor vendor,
                       void *stream) {
    uint64_t anchor = xps__clock_ns();
    if (c->ref >= 0 && anchor >= c->ref_ns && anchor - c->ref_ns < REANCHOR_NS) {
        if (c->timesliced) /* when the device reaches this stream: see take_marker */
            record_into_ring(c, vendor, stream, anchor, 1);
        if (xpushare_compute_pending(ledger, proc, 1) == 0)
            c->pending = 1;
        return;
    }
    int e = take_event(c, vendor);
    anchor = xps__clock_ns();
    if (e >= 0 && event_record(vendor, c->events[e], stream) == 0) {
        give_event(c, c->ref);
        c->ref = e;
        c->ref_ns = anchor;
    } else {
        give_event(c, e);
    }
    if (xpushare_compute_pending(ledger, proc, 1) == 0)
        c->pending = 1;
}

/* --- the slow path ---------------------------------------------------------------------------------------- */

static void sleep_ns(uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    nanosleep(&ts, NULL);
}

static void record_thread(struct xps_thread *t, enum xps_vendor vendor, const void *waited);

/*
 * Wait at the launch boundary until the rule admits this launch; returns the clock after waiting.
 *
 * Before the first sleep, this thread's launches not yet covered by an event get one: while they are
 * uncovered the process publishes them as its oldest unpublished work, and other processes hold their
 * own completions back behind it (shares.c). A waiting process would then keep others counted busy, and
 * a best-effort claim waiting for idle time could wait for ever.
 */
static uint64_t admit(struct xps_comp *c, struct xpushare_ledger *ledger, int proc, uint32_t ceiling,
                      enum xps_vendor vendor, uint64_t now, int inflight) {
    uint64_t started = now;
    for (int waited = 0;; waited = 1) {
        /* Out of tokens, whether a peer is busy decides: read them fresh then. */
        int empty = __atomic_load_n(&ledger->head.claim.tokens_ns, __ATOMIC_RELAXED) <= 0;
        const struct xpushare_peers *peers = xps__peers((int)(c - comps), now, empty);
        int64_t wait = xpushare_compute_admit(ledger, proc, peers, now, ceiling);
        if (wait == 0 && c->count >= inflight)
            wait = (int64_t)INFLIGHT_WAIT_NS;
        if (wait <= 0)
            break;
        pthread_mutex_unlock(&c->mu);
        if (!waited)
            record_thread(&xps__thread, vendor, XPS_NO_STREAM);
        sleep_ns((uint64_t)wait);
        pthread_mutex_lock(&c->mu);
        now = xps__now_ns();
        settle(c, ledger, proc, vendor, now); /* finished work lets others borrow while this one waits */
    }
    if (now > started) {
        __atomic_add_fetch(&ledger->head.claim.throttled_ns, now - started, __ATOMIC_RELAXED);
    }
    return now;
}

/* Launches until the next slow path: about CHECK_NS worth at the rate launches came since the last one. */
static void adapt_span(struct xps_thread *t, uint64_t now) {
    uint64_t gap = now - t->last_check;
    if (t->span < 1 || gap > 4 * CHECK_NS)
        t->span = 1;
    else if (gap < CHECK_NS)
        t->span = t->span * 2 > SPAN_MAX ? SPAN_MAX : t->span * 2;
    else if (gap > 2 * CHECK_NS)
        t->span /= 2;
    t->countdown = t->span;
    t->last_check = now;
}

void xps__compute_before(enum xps_vendor vendor, void *stream) {
    struct xps_thread *t = &xps__thread;
    uint64_t now = xps__clock_ns();
    adapt_span(t, now);
    if (xps__guard)
        return;
    int saved = errno, proc = -1;
    const struct xps_limit *limit = NULL;
    int dev = xps__current_device(vendor);
    struct xpushare_ledger *ledger = xps__device_ledger(dev, &proc, &limit);
    t->dev = ledger != NULL ? dev : -1;
    if (ledger == NULL || comps[dev].failed) {
        errno = saved;
        return;
    }
    xps__maybe_reclaim(dev); /* dead processes' flags go; done before the clock the rule works with */
    xps__sync_limits(dev);   /* a live quota change on the board applies from this check on */
    now = xps__clock_ns();
    struct xps_comp *c = &comps[dev];
    pthread_mutex_lock(&c->mu);
    c->timesliced = limit->scheduling == XPUSHARE_SCHED_TIMESLICED;
    settle(c, ledger, proc, vendor, now);
    int shadowed = xpushare_compute_shadowed(ledger, xps__peers(dev, now, 0), now) == 1;
    now = admit(c, ledger, proc, xps__cores_ceiling(limit), vendor, now, shadowed ? 1 : MAX_INFLIGHT);
    if (!c->pending)
        start_busy(c, ledger, proc, vendor, stream);
    pthread_mutex_unlock(&c->mu);
    /* Beside a recently active higher priority: check every launch and keep one event's work queued. */
    t->record = shadowed || now - t->last_record >= RECORD_NS;
    if (shadowed)
        t->countdown = t->span = 1;
    t->last_check = now;
    errno = saved;
}

void xps__compute_note_stream(void *stream) {
    struct xps_thread *t = &xps__thread;
    if (t->dev < 0)
        return;
    if (!t->uncovered) { /* the first launch since this thread's last event: others may queue behind it */
        struct xps_comp *c = &comps[t->dev];
        int proc = -1, saved = errno;
        const struct xps_limit *limit = NULL;
        struct xpushare_ledger *ledger = xps__device_ledger(t->dev, &proc, &limit);
        t->uncovered = 1;
        t->uncovered_since = xps__clock_ns();
        if (!t->exit_hook)
            t->exit_hook = pthread_setspecific(exit_key, (void *)1) == 0;
        pthread_mutex_lock(&c->mu);
        if (c->uncovered++ == 0)
            c->uncovered_since = t->uncovered_since;
        if (ledger != NULL)
            publish_oldest(c, ledger, proc);
        pthread_mutex_unlock(&c->mu);
        errno = saved;
    }
    for (int i = 0; i < t->nstreams; i++)
        if (t->streams[i] == stream) {
            t->streams[i] = t->streams[0];
            t->streams[0] = stream;
            return;
        }
    if (t->nstreams < 4)
        t->nstreams++;
    t->streams[t->nstreams - 1] = t->streams[0];
    t->streams[0] = stream;
}

/*
 * Record events on the streams this thread launched on since its last one. `waited`: the stream a
 * synchronize about to be called waits for (XPS_ALL_STREAMS: all of them; XPS_NO_STREAM: not one whose
 * return tells when the work completed); the event on it becomes the thread's prompt event.
 */
static void record_thread(struct xps_thread *t, enum xps_vendor vendor, const void *waited) {
    t->record = 0;
    t->prompt_seq = 0;
    if (t->dev < 0 || !t->uncovered)
        return;
    struct xps_comp *c = &comps[t->dev];
    int saved = errno, ok = 1, proc = -1;
    const struct xps_limit *limit = NULL;
    struct xpushare_ledger *ledger = xps__device_ledger(t->dev, &proc, &limit);
    uint64_t now = xps__clock_ns();
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < t->nstreams; i++) {
        int e = record_into_ring(c, vendor, t->streams[i], t->uncovered_since, 0);
        ok &= e >= 0;
        if (e >= 0 && waited != XPS_NO_STREAM && (waited == XPS_ALL_STREAMS || waited == t->streams[i]))
            t->prompt_seq = c->seq[e];
    }
    if (ok) {
        t->nstreams = 0;
        t->uncovered = 0;
        t->last_record = now;
        if (--c->uncovered == 0)
            c->uncovered_since = 0;
    }
    if (ledger != NULL)
        publish_oldest(c, ledger, proc);
    pthread_mutex_unlock(&c->mu);
    errno = saved; /* not ok: tried again at the next record; the launches stay uncovered, the process busy */
}

void xps__compute_after(enum xps_vendor vendor) {
    record_thread(&xps__thread, vendor, XPS_NO_STREAM);
}

/*
 * Before a synchronize, a synchronous copy or a query: cover what this thread launched, so the call ends
 * with every event complete. `stream` is what it waits for (compute.c's prompt events: XPS_ALL_STREAMS
 * for a context-wide synchronize, XPS_NO_STREAM where its return says nothing about when work ended).
 */
void xps__compute_sync_before(enum xps_vendor vendor, void *stream) {
    record_thread(&xps__thread, vendor, stream);
}

/*
 * After it: take the finished work into account now, not at the next launch. The event the synchronize
 * waited for completed just before it returned: its completion time is the clock now, which corrects
 * the process's device-to-clock mapping both ways (a clock anchor stamped late, or early, is off by the
 * difference; this is how a GPU that stamped the anchor only at its context's turn gets aligned).
 */
void xps__compute_sync_after(enum xps_vendor vendor) {
    struct xps_thread *t = &xps__thread;
    t->countdown = 0;
    uint64_t prompt = t->prompt_seq;
    t->prompt_seq = 0;
    int proc = -1;
    const struct xps_limit *limit = NULL;
    if (t->dev < 0 || xps__guard)
        return;
    struct xpushare_ledger *ledger = xps__device_ledger(t->dev, &proc, &limit);
    if (ledger == NULL)
        return;
    int saved = errno;
    struct xps_comp *c = &comps[t->dev];
    pthread_mutex_lock(&c->mu);
    settle_prompt(c, ledger, proc, vendor, xps__now_ns(), prompt);
    pthread_mutex_unlock(&c->mu);
    errno = saved;
}

/* In a forked child: the parent's events and streams belong to the parent's context. */
void xps__compute_after_fork(void) {
    for (int i = 0; i < XPUSHARE_MAX_DEVICES; i++) {
        struct xps_comp *c = &comps[i];
        memset(c, 0, sizeof(*c));
        pthread_mutex_init(&c->mu, NULL);
        c->ref = -1;
    }
    memset(&xps__thread, 0, sizeof(xps__thread));
    xps__thread.dev = -1;
}
