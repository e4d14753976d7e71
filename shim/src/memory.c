/*
 * memory.c - per-device admission: which ledger and board a device index uses, attaching this process to
 * them on first use, taking live quota changes from the board, reserving and releasing bytes, and the
 * memory figures the info hooks report.
 *
 * Dead processes' bytes come back through a scan of the claim's ledger that at most one process runs per
 * interval (elected by compare-and-swap on the ledger's timestamp) from the allocation and info paths,
 * and whenever an allocation would otherwise fail.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#define RECLAIM_INTERVAL_NS 200000000ull  /* periodic scan from the allocation path */
#define RECLAIM_ON_FAIL_NS 0ull           /* an allocation about to fail always looks for dead holders */

struct xps_dev {
    int configured;
    int state; /* 0 not attached, 1 attached, -1 gave up */
    int lock;
    int fd;
    int proc;
    struct xpushare_ledger *ledger;
    const struct xpushare_board *board; /* read-only mapping, NULL without a usable board */
    int board_index;                    /* this claim's entry there, -1 not found yet */
    uint64_t board_gen;                 /* the board's generation last copied into the ledger */
    struct xps_limit limit;
};

int xps__enforcing;
static struct xps_dev devices[XPUSHARE_MAX_DEVICES] __attribute__((aligned(64)));

/* Why allocations are refused (no usable limits file), said once per process at the first one. */
static struct {
    char path[512];
    int rc;   /* -errno */
    int line; /* > 0: where the parse failed */
    int warned;
} refusal = {"", -ENOENT, 0, 0};

void xps__memory_refuse(const char *path, int rc, int line) {
    snprintf(refusal.path, sizeof(refusal.path), "%s", path);
    refusal.rc = rc;
    refusal.line = line;
}

/* Cold and out of line, as the set-up below: the allocation path's code stays as it was. */
__attribute__((noinline, cold)) static void warn_refused(void) {
    if (__atomic_exchange_n(&refusal.warned, 1, __ATOMIC_RELAXED))
        return;
    if (refusal.line > 0)
        xps__warn("limits file %s: %s (line %d); device allocations refused", refusal.path,
                  strerror(-refusal.rc), refusal.line);
    else
        xps__warn("limits file %s: %s; device allocations refused", refusal.path, strerror(-refusal.rc));
}

__attribute__((noinline, cold)) int xps__limits_settle(void) {
    int saved = errno;
    xps__ensure_init();
    errno = saved;
    return __atomic_load_n(&xps__enforcing, __ATOMIC_ACQUIRE);
}

void xps__memory_init(const struct xps_limits *limits) {
    for (int i = 0; i < limits->count; i++) { /* each index is its slot (xps__limits_load_set) */
        struct xps_dev *d = &devices[limits->devices[i].index];
        d->limit = limits->devices[i];
        d->configured = 1;
        d->fd = -1;
        d->proc = -1;
    }
    __atomic_store_n(&xps__enforcing, 1, __ATOMIC_RELEASE);
    xps__compute_init(limits);
}

/* UUIDs compare without regard to case: NVML and the CUDA driver print hex digits in lower case, but a
 * limits file written from another source need not. */
int xps__device_by_uuid(const char *uuid) {
    for (int i = 0; i < XPUSHARE_MAX_DEVICES; i++)
        if (devices[i].configured && strcasecmp(devices[i].limit.uuid, uuid) == 0)
            return i;
    return -1;
}

int xps__device_by_physical(int physical) {
    for (int i = 0; i < XPUSHARE_MAX_DEVICES; i++)
        if (devices[i].configured && devices[i].limit.physical == physical)
            return i;
    return -1;
}

int xps__limits_have_physical(void) {
    for (int i = 0; i < XPUSHARE_MAX_DEVICES; i++)
        if (devices[i].configured && devices[i].limit.physical >= 0)
            return 1;
    return 0;
}

int xps__device_configured(int slot) {
    return slot >= 0 && slot < XPUSHARE_MAX_DEVICES && devices[slot].configured;
}

int xps__own_claim(int dev, const char *key) {
    if (dev < 0 || dev >= XPUSHARE_MAX_DEVICES || !devices[dev].configured)
        return 0;
    const struct xps_limit *l = &devices[dev].limit;
    if (strncmp(l->claim, key, XPUSHARE_KEY_LEN) == 0)
        return 1;
    for (int i = 0; i < l->nalso; i++)
        if (strncmp(l->also[i], key, XPUSHARE_KEY_LEN) == 0)
            return 1;
    return 0;
}

/* Without a usable ledger file the process still enforces its own limit in a private ledger. */
static int open_ledger(struct xps_dev *d) {
    const char *key = d->limit.claim;
    int fd = d->limit.ledger[0] ? xpushare_ledger_open(d->limit.ledger, key, d->limit.uuid) : -ENOENT;
    if (fd < 0) {
        xps__warn("ledger %s unusable (%s): limiting this process alone", d->limit.ledger, strerror(-fd));
        /* The system call, not glibc's wrapper: the wrapper needs glibc 2.27 (see glibc_compat.h). */
        fd = (int)syscall(SYS_memfd_create, "xpushare-ledger", MFD_CLOEXEC);
        if (fd < 0 || xps__ledger_prepare(fd, key, d->limit.uuid) != 0)
            return -1;
    }
    return fd;
}

/* The device's board, mapped read-only; NULL (the limits file's values, no peers) when unusable. */
static const struct xpushare_board *open_board(const struct xps_dev *d) {
    if (d->limit.board[0] == '\0')
        return NULL;
    int fd = open(d->limit.board, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return NULL;
    const struct xpushare_board *board = xpushare_board_map(fd, 0);
    close(fd); /* the mapping stays */
    if (board == NULL)
        xps__warn("board %s unusable: the limits file's values hold, without peers", d->limit.board);
    return board;
}

static int attach(struct xps_dev *d) {
    while (__atomic_exchange_n(&d->lock, 1, __ATOMIC_ACQUIRE))
        sched_yield();
    if (d->state == 0) {
        d->state = -1;
        int fd = open_ledger(d);
        struct xpushare_ledger *ledger = fd >= 0 ? xpushare_ledger_map(fd) : NULL;
        /* Generation 0: nobody wrote limits into it yet (no plugin created it): the file's values. */
        int fresh = ledger != NULL && __atomic_load_n(&ledger->head.generation, __ATOMIC_ACQUIRE) == 0;
        int proc = ledger ? xpushare_ledger_attach(ledger, fd) : -EIO;
        if (proc >= 0 && fresh)
            xpushare_ledger_set_limits(ledger, d->limit.memory_bytes, d->limit.core_percent, d->limit.priority,
                                       d->limit.policy);
        if (proc >= 0) {
            d->fd = fd;
            d->ledger = ledger;
            d->proc = proc;
            d->board = open_board(d);
            d->board_index = -1;
            d->board_gen = 0;
            __atomic_store_n(&d->state, 1, __ATOMIC_RELEASE);
            xps__sync_limits((int)(d - devices));
        } else {
            xps__warn("cannot join the ledger of device %d (%s): its allocations are refused",
                      d->limit.index, strerror(-proc));
            if (ledger != NULL)
                xpushare_ledger_unmap(ledger);
            if (fd >= 0)
                close(fd);
        }
    }
    __atomic_store_n(&d->lock, 0, __ATOMIC_RELEASE);
    return d->state;
}

static inline struct xps_dev *ready_device(int dev, int *state) {
    struct xps_dev *d = &devices[dev];
    *state = __atomic_load_n(&d->state, __ATOMIC_ACQUIRE);
    if (XPS_UNLIKELY(*state == 0))
        *state = attach(d);
    return d;
}

/* Run a dead-process scan if none ran for `interval`; only the process winning the CAS scans. */
static int maybe_reclaim(struct xps_dev *d, uint64_t interval) {
    uint64_t now = xps__now_ns();
    uint64_t last = __atomic_load_n(&d->ledger->head.last_reclaim_ns, __ATOMIC_RELAXED);
    if (now - last < interval ||
        !__atomic_compare_exchange_n(&d->ledger->head.last_reclaim_ns, &last, now, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return 0;
    return xpushare_ledger_reclaim(d->ledger, d->fd);
}

/* The file's allocation bounds every live change; the ledger record holds the current quota. */
uint64_t xps__memory_ceiling(const struct xps_limit *limit) {
    if (limit->memory_bytes == 0 || limit->memory_max == 0)
        return limit->memory_bytes == 0 ? limit->memory_max : limit->memory_bytes;
    return limit->memory_max > limit->memory_bytes ? limit->memory_max : limit->memory_bytes;
}

uint32_t xps__cores_ceiling(const struct xps_limit *limit) {
    if (!limit->has_cores_max || limit->cores_max < limit->core_percent)
        return limit->core_percent;
    return limit->cores_max;
}

/* The other claims of the container on the device: their board entries add to the first one's. */
static void add_merged_entries(const struct xps_dev *d, struct xpushare_board_entry *sum) {
    for (int i = 0; i < d->limit.nalso; i++) {
        struct xpushare_board_entry other;
        if (xpushare_board_find(d->board, d->limit.also[i], &other, NULL) >= 0)
            xps__quota_add(&sum->limit_bytes, &sum->core_percent, &sum->priority, &sum->policy,
                           other.limit_bytes, other.core_percent % 101, other.priority % 3, other.policy % 2);
    }
}

/*
 * A changed board generation: copy this claim's entry into its ledger (the plugin's live quota), with
 * the entries of the container's other claims on the device added. One atomic load when nothing changed,
 * so the allocation path can call it every time.
 */
void xps__sync_limits(int dev) {
    struct xps_dev *d = &devices[dev];
    if (__atomic_load_n(&d->state, __ATOMIC_ACQUIRE) != 1 || d->board == NULL)
        return;
    uint64_t gen = __atomic_load_n(&d->board->generation, __ATOMIC_ACQUIRE);
    if (gen == __atomic_load_n(&d->board_gen, __ATOMIC_RELAXED))
        return;
    const char *key = d->limit.claim;
    struct xpushare_board_entry entry;
    uint64_t read_gen = 0;
    int index = d->board_index, rc = -ENOENT;
    if (index >= 0 && xpushare_board_read(d->board, index, &entry, &read_gen) == 1 &&
        strncmp(entry.key, key, XPUSHARE_KEY_LEN) == 0)
        rc = index;
    else
        rc = xpushare_board_find(d->board, key, &entry, &read_gen);
    if (rc == -EAGAIN)
        return; /* being written: look again at the next call */
    if (rc >= 0) {
        d->board_index = rc;
        int saved = errno;
        entry.core_percent %= 101;
        entry.priority %= 3;
        entry.policy %= 2;
        add_merged_entries(d, &entry);
        xpushare_ledger_set_limits(d->ledger, entry.limit_bytes, entry.core_percent, entry.priority,
                                   entry.policy);
        errno = saved;
    }
    __atomic_store_n(&d->board_gen, rc >= 0 ? read_gen : gen, __ATOMIC_RELAXED);
}

const struct xpushare_board *xps__device_board(int dev, int *own_index) {
    if (dev < 0 || dev >= XPUSHARE_MAX_DEVICES)
        return NULL;
    struct xps_dev *d = &devices[dev];
    if (__atomic_load_n(&d->state, __ATOMIC_ACQUIRE) != 1)
        return NULL;
    *own_index = d->board_index;
    return d->board;
}

static int reserve(struct xps_dev *d, uint64_t bytes) {
    uint64_t ceiling = xps__memory_ceiling(&d->limit);
    xps__sync_limits((int)(d - devices));
    maybe_reclaim(d, RECLAIM_INTERVAL_NS);
    int rc = xpushare_ledger_reserve(d->ledger, d->proc, bytes, ceiling);
    if (rc == -ENOMEM && maybe_reclaim(d, RECLAIM_ON_FAIL_NS) > 0)
        rc = xpushare_ledger_reserve(d->ledger, d->proc, bytes, ceiling);
    if (rc == -ENOMEM) { /* counted for the claim's operators: "why did my job run out of memory?" */
        __atomic_add_fetch(&d->ledger->head.claim.refused_allocs, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&d->ledger->head.claim.refused_bytes, bytes, __ATOMIC_RELAXED);
    }
    return rc == 0 ? 1 : -1;
}

struct xpushare_ledger *xps__device_ledger(int dev, int *proc, const struct xps_limit **limit) {
    if (dev < 0 || dev >= XPUSHARE_MAX_DEVICES || !devices[dev].configured)
        return NULL;
    int state, saved = errno;
    struct xps_dev *d = ready_device(dev, &state);
    errno = saved;
    if (state != 1)
        return NULL;
    *proc = d->proc;
    *limit = &d->limit;
    return d->ledger;
}

int xps__maybe_reclaim(int dev) {
    struct xps_dev *d = &devices[dev];
    if (__atomic_load_n(&d->state, __ATOMIC_ACQUIRE) != 1)
        return 0;
    int saved = errno;
    int rc = maybe_reclaim(d, RECLAIM_INTERVAL_NS);
    errno = saved;
    return rc;
}

/* 1: counted against dev; 0: not limited (pass through, untracked); -1: over the limit or no limits file. */
int xps__reserve(int dev, uint64_t bytes) {
    if (XPS_UNLIKELY(!xps__limits_usable())) {
        warn_refused(); /* fail closed: without its limits a process gets no device memory */
        return -1;
    }
    if (XPS_UNLIKELY(dev == XPS_UNCLAIMED))
        return -1; /* a device no claim of the container holds (identity.c said so once) */
    if (dev < 0 || dev >= XPUSHARE_MAX_DEVICES || !devices[dev].configured)
        return 0;
    int saved = errno; /* the caller's errno survives the shim's own system calls */
    int state, rc = -1;
    struct xps_dev *d = ready_device(dev, &state);
    if (state == 1)
        rc = reserve(d, bytes);
    errno = saved;
    return rc;
}

void xps__release(int dev, uint64_t bytes) {
    if (dev < 0 || dev >= XPUSHARE_MAX_DEVICES)
        return;
    struct xps_dev *d = &devices[dev];
    if (__atomic_load_n(&d->state, __ATOMIC_ACQUIRE) == 1) {
        int saved = errno;
        xpushare_ledger_release(d->ledger, d->proc, bytes);
        errno = saved;
    }
}

/* What a memory-info call reports for dev: the limit as total, the claim's ledger usage as used. */
int xps__mem_info(int dev, uint64_t real_free, uint64_t real_total, uint64_t *free_out,
                  uint64_t *total_out) {
    if (XPS_UNLIKELY(!xps__limits_usable())) {
        *free_out = 0; /* failing closed: no allocation will succeed, so none is advertised */
        *total_out = real_total;
        return 1;
    }
    if (dev == XPS_UNCLAIMED) {
        *free_out = 0; /* no allocation on it will succeed */
        *total_out = real_total;
        return 1;
    }
    if (dev < 0 || dev >= XPUSHARE_MAX_DEVICES || !devices[dev].configured ||
        xps__memory_ceiling(&devices[dev].limit) == 0)
        return 0;
    int state, saved = errno;
    struct xps_dev *d = ready_device(dev, &state);
    if (state == 1)
        maybe_reclaim(d, RECLAIM_INTERVAL_NS);
    errno = saved;
    if (state != 1)
        return 0;
    xps__sync_limits(dev);
    uint64_t total = xps__memory_ceiling(&d->limit);
    uint64_t live = __atomic_load_n(&d->ledger->head.claim.limit_bytes, __ATOMIC_ACQUIRE);
    if (live != 0 && live < total)
        total = live; /* a quota lowered in the ledger shows at once */
    if (real_total != 0 && real_total < total)
        total = real_total; /* never report more than the device has */
    uint64_t used = __atomic_load_n(&d->ledger->head.claim.used_bytes, __ATOMIC_ACQUIRE);
    uint64_t free_bytes = total > used ? total - used : 0;
    *free_out = free_bytes < real_free ? free_bytes : real_free;
    *total_out = total;
    return 1;
}

/* At a normal exit the claim gets its bytes back at once (the driver frees the memory with the process). */
__attribute__((destructor)) static void detach_all(void) {
    for (int i = 0; i < XPUSHARE_MAX_DEVICES; i++) {
        struct xps_dev *d = &devices[i];
        if (__atomic_load_n(&d->state, __ATOMIC_ACQUIRE) == 1)
            xpushare_ledger_detach(d->ledger, d->fd, d->proc);
    }
}

/* In a forked child: the parent's slots are not ours; join again at the first allocation. */
void xps__memory_after_fork(void) {
    refusal.warned = 0; /* a new process: it says why at its own first allocation */
    for (int i = 0; i < XPUSHARE_MAX_DEVICES; i++) {
        struct xps_dev *d = &devices[i];
        d->lock = 0;
        if (d->state == 1) {
            xpushare_ledger_unmap(d->ledger);
            close(d->fd); /* the parent keeps the open file, and with it its liveness lock */
            if (d->board != NULL)
                xpushare_board_unmap((struct xpushare_board *)d->board);
        }
        d->board = NULL;
        d->state = 0;
        d->ledger = NULL;
        d->fd = -1;
        d->proc = -1;
    }
}
