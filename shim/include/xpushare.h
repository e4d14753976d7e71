/*
 * xpushare.h - the one public header of the XPUShare shim.
 *
 * It defines the per-device ledger (a shared file mapped by every process that uses the device, in every
 * container on the node, and by the node plugin) and the small C API that creates, attaches, reads and
 * updates ledgers. The shim library (libxpushare.so) enforces the limits; the Python binding
 * (shim/ledger.py) reads the declarations between the XPUSHARE_CDEF markers with cffi, so C and Python
 * share one layout. Keep that section free of preprocessor logic other than integer #defines.
 *
 * Limits file (read-only in the container, at XPUSHARE_LIMITS_PATH below), one record per line:
 *
 *     # comment
 *     version 1
 *     claim <claim-uid>
 *     device index=<n> uuid=<id> memory=<bytes> cores=<0-100> priority=<high|normal|low>
 *            policy=<guaranteed|fixed> ledger=<path> memory-max=<bytes> cores-max=<0-100>  (one line)
 *
 * `index` is the device's ordinal inside the container (CUDA ordinal, Ascend logical id); memory=0 means
 * no memory limit. `memory-max`/`cores-max` (optional) are what the claim was allocated: the ceiling a
 * live quota change in the ledger may raise the limits back to. Unknown keys are ignored, so newer
 * writers stay readable.
 *
 * Ledger layout (version 1): a header, one record per container (keyed by claim UID) with its limit and
 * used bytes, and one record per process (keyed by pid and start time) with its own used bytes. All
 * updates happen under a robust process-shared mutex with a one-entry undo journal, so a process killed
 * inside an update (SIGKILL included) leaves the ledger exact: the next locker rolls the journal back.
 * A process keeps an fcntl lock on byte (XPUSHARE_LIVENESS_BASE + slot) of the ledger file; the kernel
 * drops it when the process dies, which is how any process (in any pid namespace) tells that a slot's
 * owner is gone.
 *
 * Compute (version 2): each container record holds a token bucket of device time (refilled at its share
 * of wall time, charged with device time measured by events on its processes' streams), and each process
 * record says whether it has work on the device. The header holds the time up to which the device's
 * work has been charged (so no interval is charged twice), the count of processes with work on the
 * device, the last launch per priority, and quota_generation, bumped by every change of a container's
 * limits.
 */
#ifndef XPUSHARE_H
#define XPUSHARE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XPUSHARE_EXTERN __attribute__((visibility("default")))

/*
 * Where the shim reads its limits: fixed at build time, so no environment variable can point a process
 * at a file of its own (the node plugin mounts the claim's file here read-only; kubeletplugin/cdi.py
 * reads this line). Only a build with -DXPUSHARE_TEST_HOOKS (tests and the local simulation, never the
 * packaged library) honours XPUSHARE_LIMITS_FILE instead. Without a usable file here, every device
 * allocation is refused.
 */
#define XPUSHARE_LIMITS_PATH "/etc/xpushare/limits"

/* XPUSHARE_CDEF_BEGIN */
#define XPUSHARE_LEDGER_MAGIC 0x5844475253505558
#define XPUSHARE_LEDGER_VERSION 2
#define XPUSHARE_MAX_CONTAINERS 64
#define XPUSHARE_MAX_PROCS 1024
#define XPUSHARE_MAX_DEVICES 64
#define XPUSHARE_KEY_LEN 64
#define XPUSHARE_LOCK_BYTES 64
#define XPUSHARE_LIVENESS_BASE 1073741824

#define XPUSHARE_SLOT_FREE 0
#define XPUSHARE_SLOT_ACTIVE 1

#define XPUSHARE_PRIORITY_LOW 0
#define XPUSHARE_PRIORITY_NORMAL 1
#define XPUSHARE_PRIORITY_HIGH 2
#define XPUSHARE_POLICY_GUARANTEED 0
#define XPUSHARE_POLICY_FIXED 1

#define XPUSHARE_PRIORITY_HOLD_NS 5000000
#define XPUSHARE_PRIORITY_SHADOW_NS 100000000
#define XPUSHARE_BUCKET_WINDOW_NS 20000000
#define XPUSHARE_BUCKET_MIN_NS 1000000
#define XPUSHARE_PUBLISH_WAIT_NS 5000000

/* One claim (container) on the device: its limit and what its processes hold together. */
struct xpushare_container {
    uint32_t state;          /* XPUSHARE_SLOT_* */
    uint32_t core_percent;   /* compute share, 100 = the whole device */
    uint32_t priority;       /* XPUSHARE_PRIORITY_* */
    uint32_t policy;         /* XPUSHARE_POLICY_* */
    uint64_t limit_bytes;    /* 0 = no memory limit */
    uint64_t used_bytes;     /* sum of its processes' used_bytes */
    uint64_t peak_bytes;     /* high-water mark of used_bytes */
    uint64_t nprocs;         /* processes attached now */
    char key[64];            /* claim UID, NUL-terminated; empty when free */
    int64_t tokens_ns;       /* compute token bucket: device time it may still use (may go negative) */
    uint64_t refill_ns;      /* CLOCK_MONOTONIC of the bucket's last refill */
    uint64_t used_ns;        /* device time charged since the record was created */
    uint64_t throttled_ns;   /* time its launches waited at launch boundaries */
    uint64_t launch_ns;      /* CLOCK_MONOTONIC of its last launch check (its demand) */
    uint32_t npending;       /* its processes with work on the device */
    uint32_t reserved;
};

/* One process using the device. */
struct xpushare_proc {
    uint32_t state;          /* XPUSHARE_SLOT_* */
    int32_t pid;             /* in the process's own pid namespace */
    uint64_t start_time;     /* /proc/<pid>/stat field 22, clock ticks after boot */
    uint32_t container;      /* index into containers[] */
    uint32_t pending;        /* 1 while it has work on the device (compute accounting) */
    uint64_t used_bytes;
    uint64_t peak_bytes;
    uint64_t unpublished_ns; /* record time of its oldest event not yet charged, 0 if none */
};

/* Undo record of the update in progress; restored by the next locker if its writer died. */
struct xpushare_journal {
    uint32_t active;
    uint32_t container;
    uint32_t proc;
    uint32_t reserved;
    uint64_t used_bytes;
    uint64_t peak_bytes;
    struct xpushare_container saved_container;
    struct xpushare_proc saved_proc;
};

struct xpushare_ledger {
    uint64_t magic;          /* XPUSHARE_LEDGER_MAGIC once initialised */
    uint32_t version;        /* XPUSHARE_LEDGER_VERSION */
    uint32_t header_size;    /* sizeof(struct xpushare_ledger) */
    uint32_t container_size; /* sizeof(struct xpushare_container) */
    uint32_t proc_size;      /* sizeof(struct xpushare_proc) */
    uint32_t max_containers;
    uint32_t max_procs;
    char uuid[64];           /* identity of the physical device */
    uint64_t total_bytes;    /* physical memory, 0 if unknown */
    uint64_t used_bytes;     /* sum over containers */
    uint64_t peak_bytes;     /* high-water mark of used_bytes */
    uint64_t reclaimed_bytes;/* returned from dead processes since creation */
    uint64_t last_reclaim_ns;/* CLOCK_MONOTONIC of the last dead-process scan */
    uint64_t generation;     /* bumped by every update */
    uint64_t quota_generation; /* bumped when a container's limits change */
    uint64_t vclock_ns;      /* virtual clock: integral of 1/npending over time (statistics) */
    uint64_t vclock_wall_ns; /* CLOCK_MONOTONIC of its last advance */
    uint64_t attributed_ns;  /* device time up to here is charged to someone (CLOCK_MONOTONIC) */
    uint32_t npending;       /* processes with work on the device */
    uint32_t reserved;
    uint64_t active_ns[3];   /* last launch check per priority (XPUSHARE_PRIORITY_*) */
    uint8_t lock[64];        /* robust process-shared pthread mutex */
    uint8_t compute_lock[64];/* robust mutex of the virtual clock */
    struct xpushare_journal journal;
    struct xpushare_container containers[64];
    struct xpushare_proc procs[1024];
};

/* Errors are negative errno values. */
XPUSHARE_EXTERN int xpushare_ledger_open(const char *path, const char *uuid, uint64_t total_bytes);
XPUSHARE_EXTERN struct xpushare_ledger *xpushare_ledger_map(int fd);
XPUSHARE_EXTERN int xpushare_ledger_unmap(struct xpushare_ledger *ledger);
XPUSHARE_EXTERN int xpushare_ledger_set_container(struct xpushare_ledger *ledger, const char *key,
                                                  uint64_t limit_bytes, uint32_t core_percent,
                                                  uint32_t priority, uint32_t policy);
XPUSHARE_EXTERN int xpushare_ledger_remove_container(struct xpushare_ledger *ledger, const char *key);
XPUSHARE_EXTERN int xpushare_ledger_find_container(struct xpushare_ledger *ledger, const char *key);
XPUSHARE_EXTERN int xpushare_ledger_attach(struct xpushare_ledger *ledger, int fd, const char *key,
                                           uint64_t limit_bytes);
XPUSHARE_EXTERN int xpushare_ledger_detach(struct xpushare_ledger *ledger, int fd, int proc);
XPUSHARE_EXTERN int xpushare_ledger_reserve(struct xpushare_ledger *ledger, int proc, uint64_t bytes,
                                            uint64_t limit_bytes);
XPUSHARE_EXTERN int xpushare_ledger_release(struct xpushare_ledger *ledger, int proc, uint64_t bytes);
XPUSHARE_EXTERN int xpushare_ledger_reclaim(struct xpushare_ledger *ledger, int fd);
XPUSHARE_EXTERN int xpushare_proc_alive(int fd, int proc);
XPUSHARE_EXTERN uint64_t xpushare_ledger_attribute(struct xpushare_ledger *ledger, uint64_t start_ns,
                                                   uint64_t end_ns);
XPUSHARE_EXTERN int xpushare_ledger_charge(struct xpushare_ledger *ledger, int proc, uint64_t device_ns);
XPUSHARE_EXTERN int xpushare_compute_pending(struct xpushare_ledger *ledger, int proc, int pending,
                                             uint64_t now_ns, uint64_t *vclock_out);
XPUSHARE_EXTERN int xpushare_compute_earlier_work(struct xpushare_ledger *ledger, int proc,
                                                  uint64_t recorded_ns);
XPUSHARE_EXTERN int xpushare_compute_shadowed(struct xpushare_ledger *ledger, int proc, uint64_t now_ns);
XPUSHARE_EXTERN int64_t xpushare_compute_admit(struct xpushare_ledger *ledger, int proc, uint64_t now_ns,
                                               uint32_t max_percent);
/* XPUSHARE_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* XPUSHARE_H */
