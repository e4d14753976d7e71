/*
 * shares.c - compute shares: each claim's token bucket of device time (in its own ledger) and the
 * launch-boundary rule that says whether a process may launch now, given what it knows of the device's
 * other claims (struct xpushare_peers, built from the board and their ledgers' heads by peers.c).
 *
 * Pure ledger logic with explicit timestamps (no clock, no vendor calls), so the Python binding and unit
 * tests drive it exactly as the shim does. The rule, applied at every launch check of a process p of
 * claim c (share s, policy, priority, all from the board the node plugin writes):
 *
 *   1. Priority: while another claim whose board priority is higher than c's launched within
 *      XPUSHARE_PRIORITY_HOLD_NS, p waits (high goes first at launch boundaries; lower priorities use the
 *      gaps it leaves). Within XPUSHARE_PRIORITY_SHADOW_NS of such a launch, p keeps at most one event's
 *      worth of work queued and checks at every launch, so a returning higher priority finds little
 *      queued ahead of it.
 *   2. Tokens: c's bucket refills at s% of wall time (at most XPUSHARE_BUCKET_WINDOW_NS * s% banked) and
 *      is charged with measured device time. With tokens left, p launches.
 *   3. Borrowing: out of tokens, a `guaranteed` claim still launches when no other claim has work on the
 *      device (idle time); a `fixed` claim never borrows. A guaranteed claim's debt is capped at one
 *      bucket, so borrowing alone is never paid back under contention.
 *
 * Charging: events give each process the completion times of its work (anchored on CLOCK_MONOTONIC at
 * the start of a busy period, advanced by elapsed times). A serializing device runs work in the order it
 * completes, so the interval between the previous completion on the device and a process's completion
 * is that process's: a claim is charged only the part of (its previous completion, its completion] past
 * both its own attributed-until time and the latest its peers published. Waiting behind another claim's
 * work is therefore not charged. Completions are published in the order the work was recorded: a
 * process holds back a completion while another process (of its claim or a peer) still has an
 * unpublished event recorded before it, for at most XPUSHARE_PUBLISH_WAIT_NS.
 *
 * What peers publish is theirs to forge: a peer's timestamps are clamped to the reader's clock, its
 * priority is the board's, and what it says can delay a launch by at most the hold above or let others
 * skip charging time it claims was its own; it cannot change another claim's bucket, share or limits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define REFILL_MIN_NS 20000ull   /* refill at most every 20 us (one CAS winner) */
#define WAIT_MIN_NS 20000ull
#define WAIT_MAX_NS 1000000ull

static pthread_mutex_t *compute_mutex(struct xpushare_ledger *ledger) {
    return (pthread_mutex_t *)(void *)ledger->compute_lock;
}

/* Recount the pending processes from the process records (after a holder of the lock died). */
static void recount_locked(struct xpushare_ledger *ledger) {
    uint32_t total = 0;
    for (int i = 0; i < xps__proc_hwm(ledger); i++) {
        struct xpushare_proc *p = &ledger->procs[i];
        if (__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) == XPUSHARE_SLOT_ACTIVE && p->pending)
            total++;
    }
    __atomic_store_n(&ledger->head.claim.npending, total, __ATOMIC_RELEASE);
}

int xps__compute_lock(struct xpushare_ledger *ledger) {
    int rc = pthread_mutex_lock(compute_mutex(ledger));
    if (rc == EOWNERDEAD) {
        recount_locked(ledger);
        pthread_mutex_consistent(compute_mutex(ledger));
        rc = 0;
    }
    return -rc;
}

void xps__compute_unlock(struct xpushare_ledger *ledger) {
    pthread_mutex_unlock(compute_mutex(ledger));
}

int xps__compute_init_lock(struct xpushare_ledger *ledger) {
    return xps__init_robust_mutex(compute_mutex(ledger));
}

/* Reconcile the pending count with the process records (dead processes' flags were dropped). */
void xps__compute_recount(struct xpushare_ledger *ledger) {
    if (xps__compute_lock(ledger) == 0) {
        recount_locked(ledger);
        xps__compute_unlock(ledger);
    }
}

XPUSHARE_EXTERN int xpushare_compute_pending(struct xpushare_ledger *ledger, int proc, int pending) {
    if (xps__bad_proc(ledger, proc))
        return -EINVAL;
    int rc = xps__compute_lock(ledger);
    if (rc != 0)
        return rc;
    struct xpushare_proc *p = &ledger->procs[proc];
    struct xpushare_claim *c = &ledger->head.claim;
    if (p->state != XPUSHARE_SLOT_ACTIVE) {
        rc = -ESRCH;
    } else if (pending && !p->pending) {
        p->pending = 1;
        __atomic_add_fetch(&c->npending, 1, __ATOMIC_ACQ_REL);
    } else if (!pending && p->pending) {
        p->pending = 0;
        if (c->npending > 0)
            __atomic_sub_fetch(&c->npending, 1, __ATOMIC_ACQ_REL);
    }
    xps__compute_unlock(ledger);
    return rc;
}

static int64_t bucket_cap(uint32_t share) {
    int64_t cap = (int64_t)(XPUSHARE_BUCKET_WINDOW_NS / 100) * share;
    return cap < (int64_t)XPUSHARE_BUCKET_MIN_NS ? (int64_t)XPUSHARE_BUCKET_MIN_NS : cap;
}

static void refill(struct xpushare_claim *c, uint64_t now, uint32_t share) {
    uint64_t last = __atomic_load_n(&c->refill_ns, __ATOMIC_ACQUIRE);
    if (last == 0 || now < last) { /* first use: start empty, so a new claim gets no burst */
        __atomic_compare_exchange_n(&c->refill_ns, &last, now, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
        return;
    }
    if (now - last < REFILL_MIN_NS ||
        !__atomic_compare_exchange_n(&c->refill_ns, &last, now, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return;
    int64_t add = (int64_t)((now - last) / 100 * share), cap = bucket_cap(share);
    int64_t tokens = __atomic_load_n(&c->tokens_ns, __ATOMIC_RELAXED), next;
    do {
        next = tokens + add > cap ? (tokens > cap ? tokens : cap) : tokens + add;
    } while (!__atomic_compare_exchange_n(&c->tokens_ns, &tokens, next, 1, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
}

XPUSHARE_EXTERN uint64_t xpushare_ledger_attribute(struct xpushare_ledger *ledger,
                                                   const struct xpushare_peers *peers, uint64_t start_ns,
                                                   uint64_t end_ns) {
    if (ledger == NULL || end_ns <= start_ns)
        return 0;
    uint64_t *own = &ledger->head.claim.attributed_ns;
    uint64_t until = __atomic_load_n(own, __ATOMIC_ACQUIRE), next, from;
    uint64_t theirs = peers != NULL ? peers->attributed_ns : 0;
    do {
        from = until > start_ns ? until : start_ns;
        next = until > end_ns ? until : end_ns;
    } while (!__atomic_compare_exchange_n(own, &until, next, 1, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
    if (theirs > from)
        from = theirs; /* a peer was charged for this interval already */
    return end_ns > from ? end_ns - from : 0;
}

/* --- time-sliced devices: device time shared by whoever had work on it ------------------------------- */

struct window_edge {
    uint64_t at;
    int delta; /* +1: a window opens, -1: it closes */
};

static int edge_order(const void *a, const void *b) {
    const struct window_edge *x = a, *y = b;
    return x->at < y->at ? -1 : (x->at > y->at ? 1 : y->delta - x->delta);
}

static int add_edges(struct window_edge *edges, int n, int cap, uint64_t start, uint64_t end, uint64_t from,
                     uint64_t to) {
    if (start < from)
        start = from;
    if (end > to)
        end = to;
    if (end <= start || n + 2 > cap)
        return n;
    edges[n++] = (struct window_edge){start, 1};
    edges[n++] = (struct window_edge){end, -1};
    return n;
}

/* The latest end among process `proc`'s windows in the claim's ring, 0 if none. */
static uint64_t last_end(const struct xpushare_ledger_head *head, int proc) {
    uint64_t latest = 0;
    for (int i = 0; i < XPUSHARE_WINDOWS; i++) {
        const struct xpushare_window *w = &head->windows[i];
        uint64_t end = __atomic_load_n(&w->end_ns, __ATOMIC_ACQUIRE);
        if (end > latest && __atomic_load_n(&w->proc, __ATOMIC_RELAXED) == (uint64_t)proc)
            latest = end;
    }
    return latest;
}

/*
 * What [start_ns, end_ns] of process `proc`'s device time costs its claim on a device that time-slices
 * its contexts (NVIDIA GPUs): where k other contexts had work on the device too, the device ran each of
 * them for about 1/(k+1) of the time, so that is the share charged. The others are the peers' windows
 * (with their open ones) and the windows of this claim's other processes, published or still open.
 */
uint64_t xps__ledger_share(struct xpushare_ledger *ledger, int proc, const struct xpushare_peers *peers,
                           uint64_t start_ns, uint64_t end_ns, int *open) {
    enum { CAP = 2 * (XPUSHARE_PEER_WINDOWS + 2 * XPUSHARE_WINDOWS) };
    *open = 0;
    if (xps__bad_proc(ledger, proc) || end_ns <= start_ns)
        return 0;
    struct window_edge edges[CAP];
    int n = 0;
    uint32_t npeer = peers != NULL ? peers->nwindows : 0;
    for (uint32_t i = 0; i < npeer && i < XPUSHARE_PEER_WINDOWS; i++) {
        int before = n;
        n = add_edges(edges, n, CAP, peers->windows[i].start_ns, peers->windows[i].end_ns, start_ns, end_ns);
        if (n > before && peers->windows[i].proc == UINT64_MAX)
            *open = 1; /* a peer's work not yet charged: queued, and perhaps not yet running */
    }
    const struct xpushare_ledger_head *head = &ledger->head;
    for (int i = 0; i < XPUSHARE_WINDOWS; i++) {
        const struct xpushare_window *w = &head->windows[i];
        uint64_t end = __atomic_load_n(&w->end_ns, __ATOMIC_ACQUIRE);
        if (end != 0 && __atomic_load_n(&w->proc, __ATOMIC_RELAXED) != (uint64_t)proc)
            n = add_edges(edges, n, CAP, __atomic_load_n(&w->start_ns, __ATOMIC_RELAXED), end, start_ns, end_ns);
    }
    if (__atomic_load_n(&head->claim.npending, __ATOMIC_ACQUIRE) > 1) {
        for (int i = 0; i < xps__proc_hwm(ledger); i++) {
            struct xpushare_proc *p = &ledger->procs[i];
            uint64_t since = __atomic_load_n(&p->unpublished_ns, __ATOMIC_ACQUIRE);
            if (i == proc || since == 0 || __atomic_load_n(&p->state, __ATOMIC_ACQUIRE) != XPUSHARE_SLOT_ACTIVE)
                continue;
            uint64_t done = last_end(head, i);
            int before = n;
            n = add_edges(edges, n, CAP, since > done ? since : done, end_ns, start_ns, end_ns);
            *open |= n > before;
        }
    }
    if (n == 0)
        return end_ns - start_ns;
    qsort(edges, (size_t)n, sizeof(edges[0]), edge_order);
    uint64_t charged = 0, at = start_ns;
    int others = 0;
    for (int i = 0; i < n; i++) {
        charged += (edges[i].at - at) / (uint64_t)(others + 1);
        at = edges[i].at;
        others += edges[i].delta;
    }
    return charged + (end_ns - at) / (uint64_t)(others + 1);
}

XPUSHARE_EXTERN uint64_t xpushare_ledger_share(struct xpushare_ledger *ledger, int proc,
                                               const struct xpushare_peers *peers, uint64_t start_ns,
                                               uint64_t end_ns) {
    int open = 0;
    return xps__ledger_share(ledger, proc, peers, start_ns, end_ns, &open);
}

/*
 * Publish a busy window of process `proc` for its peers. A window that continues the process's latest
 * one (its start is that one's end) extends it in place, so a busy process fills one slot, not many.
 */
XPUSHARE_EXTERN int xpushare_window_publish(struct xpushare_ledger *ledger, int proc, uint64_t start_ns,
                                            uint64_t end_ns) {
    if (xps__bad_proc(ledger, proc))
        return -EINVAL;
    if (end_ns <= start_ns)
        return 0;
    struct xpushare_ledger_head *head = &ledger->head;
    uint64_t next = __atomic_load_n(&head->windows_next, __ATOMIC_ACQUIRE);
    if (next > 0) {
        struct xpushare_window *w = &head->windows[(next - 1) % XPUSHARE_WINDOWS];
        uint64_t end = start_ns;
        if (__atomic_load_n(&w->proc, __ATOMIC_RELAXED) == (uint64_t)proc &&
            __atomic_compare_exchange_n(&w->end_ns, &end, end_ns, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return 0;
    }
    next = __atomic_fetch_add(&head->windows_next, 1, __ATOMIC_ACQ_REL);
    struct xpushare_window *w = &head->windows[next % XPUSHARE_WINDOWS];
    __atomic_store_n(&w->end_ns, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&w->proc, (uint64_t)proc, __ATOMIC_RELAXED);
    __atomic_store_n(&w->start_ns, start_ns, __ATOMIC_RELEASE);
    __atomic_store_n(&w->end_ns, end_ns, __ATOMIC_RELEASE);
    return 0;
}

XPUSHARE_EXTERN int xpushare_compute_earlier_work(struct xpushare_ledger *ledger, int proc,
                                                  const struct xpushare_peers *peers, uint64_t recorded_ns) {
    if (xps__bad_proc(ledger, proc))
        return -EINVAL;
    if (peers != NULL && peers->unpublished_ns != 0 && peers->unpublished_ns < recorded_ns)
        return 1;
    if (__atomic_load_n(&ledger->head.claim.npending, __ATOMIC_ACQUIRE) <= 1)
        return 0;
    for (int i = 0; i < xps__proc_hwm(ledger); i++) {
        struct xpushare_proc *p = &ledger->procs[i];
        if (i == proc || __atomic_load_n(&p->state, __ATOMIC_ACQUIRE) != XPUSHARE_SLOT_ACTIVE)
            continue;
        uint64_t other = __atomic_load_n(&p->unpublished_ns, __ATOMIC_ACQUIRE);
        if (other != 0 && other < recorded_ns)
            return 1;
    }
    return 0;
}

/* Publish a process's oldest uncharged work, and the claim's (the oldest of its processes) for peers. */
XPUSHARE_EXTERN int xpushare_compute_publish(struct xpushare_ledger *ledger, int proc, uint64_t oldest_ns) {
    if (xps__bad_proc(ledger, proc))
        return -EINVAL;
    __atomic_store_n(&ledger->procs[proc].unpublished_ns, oldest_ns, __ATOMIC_RELEASE);
    uint64_t claim = oldest_ns;
    if (__atomic_load_n(&ledger->head.claim.npending, __ATOMIC_ACQUIRE) > 1) {
        for (int i = 0; i < xps__proc_hwm(ledger); i++) {
            struct xpushare_proc *p = &ledger->procs[i];
            if (i == proc || __atomic_load_n(&p->state, __ATOMIC_ACQUIRE) != XPUSHARE_SLOT_ACTIVE)
                continue;
            uint64_t other = __atomic_load_n(&p->unpublished_ns, __ATOMIC_ACQUIRE);
            if (other != 0 && (claim == 0 || other < claim))
                claim = other;
        }
    }
    __atomic_store_n(&ledger->head.claim.unpublished_ns, claim, __ATOMIC_RELEASE);
    return 0;
}

XPUSHARE_EXTERN int xpushare_ledger_charge(struct xpushare_ledger *ledger, int proc, uint64_t device_ns) {
    if (xps__bad_proc(ledger, proc))
        return -EINVAL;
    struct xpushare_claim *c = &ledger->head.claim;
    __atomic_add_fetch(&c->used_ns, device_ns, __ATOMIC_RELAXED);
    int64_t tokens = __atomic_load_n(&c->tokens_ns, __ATOMIC_RELAXED), next;
    /* A guaranteed claim's debt stops at one bucket: time borrowed while alone is not paid back. */
    int64_t floor = c->policy == XPUSHARE_POLICY_FIXED ? INT64_MIN / 2 : -bucket_cap(c->core_percent % 101);
    do {
        next = tokens - (int64_t)device_ns;
        if (next < floor)
            next = tokens < floor ? tokens : floor;
    } while (!__atomic_compare_exchange_n(&c->tokens_ns, &tokens, next, 1, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
    return 0;
}

static uint64_t clamp_wait(uint64_t ns) {
    return ns < WAIT_MIN_NS ? WAIT_MIN_NS : (ns > WAIT_MAX_NS ? WAIT_MAX_NS : ns);
}

/* Rule 1: how long a higher priority's recent launch still holds this one back (0: not at all). */
static uint64_t priority_hold(const struct xpushare_peers *peers, uint32_t priority, uint64_t now) {
    uint64_t hold = 0;
    if (peers == NULL)
        return 0;
    for (uint32_t p = priority + 1; p <= XPUSHARE_PRIORITY_HIGH; p++) {
        uint64_t last = peers->launch_ns[p];
        if (last != 0 && now < last + XPUSHARE_PRIORITY_HOLD_NS && last + XPUSHARE_PRIORITY_HOLD_NS - now > hold)
            hold = last + XPUSHARE_PRIORITY_HOLD_NS - now;
    }
    return hold;
}

XPUSHARE_EXTERN int xpushare_compute_shadowed(struct xpushare_ledger *ledger, const struct xpushare_peers *peers,
                                              uint64_t now_ns) {
    if (ledger == NULL)
        return -EINVAL;
    if (peers == NULL)
        return 0;
    uint32_t own = __atomic_load_n(&ledger->head.claim.priority, __ATOMIC_RELAXED) % 3;
    for (uint32_t p = own + 1; p <= XPUSHARE_PRIORITY_HIGH; p++) {
        uint64_t last = peers->launch_ns[p];
        if (last != 0 && now_ns < last + XPUSHARE_PRIORITY_SHADOW_NS)
            return 1;
    }
    return 0;
}

XPUSHARE_EXTERN int64_t xpushare_compute_admit(struct xpushare_ledger *ledger, int proc,
                                               const struct xpushare_peers *peers, uint64_t now_ns,
                                               uint32_t max_percent) {
    if (xps__bad_proc(ledger, proc))
        return -EINVAL;
    struct xpushare_claim *c = &ledger->head.claim;
    uint32_t share = __atomic_load_n(&c->core_percent, __ATOMIC_RELAXED);
    uint32_t priority = __atomic_load_n(&c->priority, __ATOMIC_RELAXED) % 3;
    uint32_t policy = __atomic_load_n(&c->policy, __ATOMIC_RELAXED);
    share = share > max_percent ? max_percent : share;
    uint64_t hold = priority_hold(peers, priority, now_ns);
    if (hold > 0)
        return (int64_t)clamp_wait(hold);
    refill(c, now_ns, share);
    int64_t tokens = __atomic_load_n(&c->tokens_ns, __ATOMIC_ACQUIRE);
    int others = peers != NULL && peers->busy > 0;
    if (tokens > 0 || (policy == XPUSHARE_POLICY_GUARANTEED && !others)) {
        __atomic_store_n(&c->launch_ns, now_ns, __ATOMIC_RELEASE);
        return 0;
    }
    if (share == 0)
        return (int64_t)WAIT_MAX_NS / 4;
    return (int64_t)clamp_wait((uint64_t)(-tokens) / share * 100 + 1);
}

/*
 * Whether the claim launched or completed work in the last XPUSHARE_BUSY_GRACE_NS. A claim between two
 * batches (its synchronize returned, its next launches not made yet) has nothing pending, but is not
 * idle: a peer that borrowed that "idle" time would compete with its next batch. Timestamps are its
 * own (forgeable) and clamped to `now_ns`: peers.c counts such a claim busy only while one of its
 * processes is alive.
 */
int xps__recently_active(const struct xpushare_ledger_head *head, uint64_t now_ns) {
    const struct xpushare_claim *c = &head->claim;
    uint64_t active = c->attributed_ns > c->launch_ns ? c->attributed_ns : c->launch_ns;
    for (int i = 0; i < XPUSHARE_WINDOWS; i++)
        active = head->windows[i].end_ns > active ? head->windows[i].end_ns : active;
    active = active > now_ns ? now_ns : active;
    return active != 0 && now_ns - active < XPUSHARE_BUSY_GRACE_NS;
}

/* A peer's recent busy windows, clamped to `now_ns`, and its open one: uncharged work since its last. */
static void add_windows(struct xpushare_peers *peers, const struct xpushare_ledger_head *head, uint64_t now_ns) {
    uint64_t horizon = now_ns > XPUSHARE_WINDOW_HORIZON_NS ? now_ns - XPUSHARE_WINDOW_HORIZON_NS : 0;
    uint64_t latest = 0;
    for (int i = 0; i < XPUSHARE_WINDOWS && peers->nwindows < XPUSHARE_PEER_WINDOWS; i++) {
        const struct xpushare_window *w = &head->windows[i];
        uint64_t end = w->end_ns > now_ns ? now_ns : w->end_ns, start = w->start_ns;
        if (end == 0 || end <= horizon || start >= end)
            continue; /* unused, being written, old, or not a window */
        peers->windows[peers->nwindows++] = (struct xpushare_window){end, w->proc, start};
        latest = end > latest ? end : latest;
    }
    uint64_t open = head->claim.unpublished_ns > now_ns ? now_ns : head->claim.unpublished_ns;
    if (open != 0 && peers->nwindows < XPUSHARE_PEER_WINDOWS) {
        open = open > latest ? open : latest;
        if (open < now_ns)
            peers->windows[peers->nwindows++] = (struct xpushare_window){now_ns, UINT64_MAX, open};
    }
}

/*
 * Fold one peer's ledger head into `peers`: `priority` is the peer's on the board (never its own file's),
 * and its timestamps are clamped to `now_ns`, so a forged future time counts as "now" at most.
 */
XPUSHARE_EXTERN int xpushare_peers_add(struct xpushare_peers *peers, const struct xpushare_ledger_head *head,
                                       uint32_t priority, uint64_t now_ns) {
    if (peers == NULL || head == NULL || priority > XPUSHARE_PRIORITY_HIGH)
        return -EINVAL;
    const struct xpushare_claim *c = &head->claim;
    peers->count++;
    uint64_t launch = c->launch_ns > now_ns ? now_ns : c->launch_ns;
    if (c->npending > 0 || xps__recently_active(head, now_ns))
        peers->busy++;
    if (launch > peers->launch_ns[priority])
        peers->launch_ns[priority] = launch;
    uint64_t attributed = c->attributed_ns > now_ns ? now_ns : c->attributed_ns;
    if (attributed > peers->attributed_ns)
        peers->attributed_ns = attributed;
    uint64_t unpublished = c->unpublished_ns > now_ns ? now_ns : c->unpublished_ns;
    if (unpublished != 0 && (peers->unpublished_ns == 0 || unpublished < peers->unpublished_ns))
        peers->unpublished_ns = unpublished;
    add_windows(peers, head, now_ns);
    return 0;
}
