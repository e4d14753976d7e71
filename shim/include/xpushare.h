/*
 * xpushare.h - the one public header of the XPUShare shim.
 *
 * It defines the files through which the shims of one physical device and the node plugin cooperate,
 * and the small C API that creates, attaches, reads and updates them. The shim library
 * (libxpushare.so) enforces the limits; the Python binding (shim/ledger.py) reads the declarations
 * between the XPUSHARE_CDEF markers with cffi, so C and Python share one layout. Keep that section free
 * of preprocessor logic other than integer #defines.
 *
 * Trust: every file a container can write belongs to its claim alone. Per physical device the node
 * has (kubeletplugin/paths.py):
 *
 *   board                  written only by the node plugin, read-only in every container of the device:
 *                          each claim's live limits (memory, share, priority, policy) under a seqlock.
 *   claims/<claim-uid>     the claim's ledger: read-write only in that claim's containers, read-only
 *                          (the directory's mount) in the other claims' containers, never mapped or
 *                          locked by the node plugin, which reads it with bounded preads.
 *
 * A tenant that rewrites its own ledger can at most escape its own limits; what it publishes there (its
 * activity) is read by the others with bounds and clamping, and its share, priority and policy are
 * taken from the board, which it cannot write.
 *
 * Limits file (read-only in the container, at XPUSHARE_LIMITS_PATH below), one record per line:
 *
 *     # comment
 *     version 1
 *     claim <claim-uid>
 *     device index=<n> uuid=<id> physical=<n> memory=<bytes> cores=<0-100> priority=<high|normal|low>
 *            policy=<guaranteed|fixed> scheduling=<serial|time-sliced> ledger=<path> board=<path>
 *            memory-max=<bytes> cores-max=<0-100>
 *
 * (one line per device). `index` is the device's position in the claim; `physical` (optional) its
 * physical number on the node (the Ascend chip id the runtime reports for a logical id, the minor of
 * /dev/davinci<N> or /dev/nvidia<N>). The shim finds the device a process uses by its identity: the
 * CUDA UUID (`uuid`), or the Ascend physical id (`physical`); only where the runtime cannot say does it
 * take the process's ordinal as the position among all the container's devices, ordered by `physical`
 * (a single file without it: by `index`). A device of the process that no line names gets no device
 * memory. memory=0 means no memory limit. `ledger` is the claim's own ledger of the device, `board`
 * the device's board (its peers' ledgers are in the `claims` directory beside it). `memory-max` and
 * `cores-max` (optional) are what the claim was allocated: the ceiling a live quota change on the board
 * may raise the limits back to. `scheduling` (serial when absent) is how the device divides its time
 * between processes, which decides how device time is charged (compute.c). Unknown keys are ignored, so
 * newer writers stay readable.
 *
 * Claim ledger (version 4): a head that peers read with one pread (the claim's limits as last copied
 * from the board, its memory and compute counters, its activity and, on time-sliced devices, its
 * processes' latest busy windows), the robust process-shared mutexes, a
 * one-entry undo journal, and one record per process (keyed by pid and start time). Every update of the
 * counters happens under the mutex with the journal written first, so a process killed inside an update
 * (SIGKILL included) leaves the ledger exact: the next locker rolls the journal back. A process keeps an
 * OFD lock on byte (XPUSHARE_LIVENESS_BASE + slot) of its ledger file; the kernel drops it when the
 * process dies, which is how its claim's other processes (in any pid namespace) tell the slot is free.
 *
 * Versions: each file starts with a magic and a version and records the sizes of its parts; a reader
 * uses a file only when all of them match its own. The plugin rebuilds a board it cannot use in place
 * (same inode, so running shims see the rebuilt one); a shim whose ledger does not match limits itself
 * alone in a private ledger; a peer ledger that does not match is treated as an idle peer.
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
 * at a file of its own (kubeletplugin/cdi.py reads these lines). The node plugin mounts each claim's
 * file read-only as XPUSHARE_LIMITS_DIR/<claim-uid>, so a container with several claims has all of
 * them; the shim reads every file there. Where that directory is missing or empty it reads the one file
 * at XPUSHARE_LIMITS_PATH (what specs of earlier releases mount). Only a build with
 * -DXPUSHARE_TEST_HOOKS (tests and the local simulation, never the packaged library) honours
 * XPUSHARE_LIMITS_FILE instead (a file, or a directory read as XPUSHARE_LIMITS_DIR is). Without usable
 * limits, every device allocation is refused.
 */
#define XPUSHARE_LIMITS_DIR "/etc/xpushare/limits.d"
#define XPUSHARE_LIMITS_PATH "/etc/xpushare/limits"
/* Claims of one container that may hold the same physical device (their limits add up). */
#define XPUSHARE_MAX_SAME_DEVICE 4

/* A device's directory on the node: its board, and its claims' ledgers in the directory beside it. */
#define XPUSHARE_BOARD_FILE "board"
#define XPUSHARE_CLAIMS_DIR "claims"

/* XPUSHARE_CDEF_BEGIN */
#define XPUSHARE_LEDGER_MAGIC 0x5844475253505558
#define XPUSHARE_LEDGER_VERSION 4
#define XPUSHARE_BOARD_MAGIC 0x44524f4253505558
#define XPUSHARE_BOARD_VERSION 1
#define XPUSHARE_MAX_CLAIMS 64
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
#define XPUSHARE_PEERS_REFRESH_NS 1000000
#define XPUSHARE_BUSY_GRACE_NS 1000000
#define XPUSHARE_WINDOWS 32
#define XPUSHARE_PEER_WINDOWS 256
#define XPUSHARE_WINDOW_HORIZON_NS 200000000

#define XPUSHARE_SCHED_SERIAL 0
#define XPUSHARE_SCHED_TIMESLICED 1

/* The claim's limits and counters on the device (in its own ledger). */
struct xpushare_claim {
    uint32_t core_percent;   /* compute share, 100 = the whole device (copied from the board) */
    uint32_t priority;       /* XPUSHARE_PRIORITY_* (copied from the board) */
    uint32_t policy;         /* XPUSHARE_POLICY_* (copied from the board) */
    uint32_t npending;       /* its processes with work on the device */
    uint64_t limit_bytes;    /* 0 = no memory limit (copied from the board) */
    uint64_t used_bytes;     /* sum of its processes' used_bytes */
    uint64_t peak_bytes;     /* high-water mark of used_bytes */
    uint64_t nprocs;         /* processes attached now */
    int64_t tokens_ns;       /* compute token bucket: device time it may still use (may go negative) */
    uint64_t refill_ns;      /* CLOCK_MONOTONIC of the bucket's last refill */
    uint64_t used_ns;        /* device time charged since the ledger was created */
    uint64_t throttled_ns;   /* time its launches waited at launch boundaries */
    uint64_t launch_ns;      /* CLOCK_MONOTONIC of its last admitted launch (its activity) */
    uint64_t attributed_ns;  /* device time up to here is charged to it (CLOCK_MONOTONIC) */
    uint64_t unpublished_ns; /* record time of its processes' oldest event not yet charged, 0 if none */
    uint64_t board_generation; /* the board's generation its limits were copied at */
    uint64_t refused_allocs; /* allocations refused at the memory limit */
    uint64_t refused_bytes;  /* and the bytes they asked for */
};

/*
 * A stretch of device time in which one of the claim's processes had work on the device (time-sliced
 * devices). `end_ns` comes first and is written last: a reader copying the entry front to back that sees
 * a non-zero end sees the start written with it (the writer zeroes the end before changing the start).
 */
struct xpushare_window {
    uint64_t end_ns;         /* CLOCK_MONOTONIC; 0 while being written */
    uint64_t proc;           /* the process slot that ran it */
    uint64_t start_ns;
};

/* What peers and the node plugin read of a claim ledger: one pread of the file's first bytes. */
struct xpushare_ledger_head {
    uint64_t magic;          /* XPUSHARE_LEDGER_MAGIC once initialised */
    uint32_t version;        /* XPUSHARE_LEDGER_VERSION */
    uint32_t head_size;      /* sizeof(struct xpushare_ledger_head) */
    uint32_t ledger_size;    /* sizeof(struct xpushare_ledger) */
    uint32_t proc_size;      /* sizeof(struct xpushare_proc) */
    uint32_t max_procs;
    uint32_t proc_hwm;       /* slots below this have been used: scans stop here */
    char key[64];            /* claim UID */
    char uuid[64];           /* identity of the physical device */
    uint64_t reclaimed_bytes;/* returned from dead processes since creation */
    uint64_t last_reclaim_ns;/* CLOCK_MONOTONIC of the last dead-process scan */
    uint64_t generation;     /* bumped by every update under the lock */
    struct xpushare_claim claim;
    uint64_t windows_next;   /* windows published so far (the ring's next slot, modulo its size) */
    struct xpushare_window windows[32]; /* its processes' latest busy windows (time-sliced devices) */
};

/* One process of the claim using the device. */
struct xpushare_proc {
    uint32_t state;          /* XPUSHARE_SLOT_* */
    int32_t pid;             /* in the process's own pid namespace */
    uint64_t start_time;     /* /proc/<pid>/stat field 22, clock ticks after boot */
    uint32_t pending;        /* 1 while it has work on the device (compute accounting) */
    uint32_t reserved;
    uint64_t used_bytes;
    uint64_t peak_bytes;
    uint64_t unpublished_ns; /* record time of its oldest event not yet charged, 0 if none */
};

/* Undo record of the update in progress; restored by the next locker if its writer died. */
struct xpushare_journal {
    uint32_t active;
    uint32_t proc;           /* XPUSHARE_MAX_PROCS: no process slot touched */
    struct xpushare_claim saved_claim;
    struct xpushare_proc saved_proc;
};

/* A claim's ledger of one device. */
struct xpushare_ledger {
    struct xpushare_ledger_head head;
    uint8_t lock[64];        /* robust process-shared pthread mutex of every update */
    uint8_t compute_lock[64];/* robust mutex of the pending counts */
    struct xpushare_journal journal;
    struct xpushare_proc procs[1024];
};

/* One claim's live limits on the board. */
struct xpushare_board_entry {
    uint32_t state;          /* XPUSHARE_SLOT_* */
    uint32_t core_percent;
    uint32_t priority;
    uint32_t policy;
    uint64_t limit_bytes;
    char key[64];            /* claim UID, NUL-terminated; empty when free */
};

/* A device's board: written by the node plugin alone, read-only in containers. */
struct xpushare_board {
    uint64_t magic;          /* XPUSHARE_BOARD_MAGIC */
    uint32_t version;        /* XPUSHARE_BOARD_VERSION */
    uint32_t board_size;     /* sizeof(struct xpushare_board) */
    uint32_t entry_size;     /* sizeof(struct xpushare_board_entry) */
    uint32_t max_entries;
    uint64_t seq;            /* seqlock: odd while the plugin writes */
    uint64_t generation;     /* bumped by every change */
    char uuid[64];
    uint64_t total_bytes;    /* physical memory, 0 if unknown */
    struct xpushare_board_entry entries[64];
};

/*
 * What a process knows of the device's other claims (refreshed every XPUSHARE_PEERS_REFRESH_NS from
 * the board and their ledgers' heads); timestamps are clamped to the reader's clock.
 */
struct xpushare_peers {
    uint32_t busy;           /* other claims with work on the device, or with some XPUSHARE_BUSY_GRACE_NS ago */
    uint32_t count;          /* other claims on the board */
    uint64_t launch_ns[3];   /* latest admitted launch of another claim, per its board priority */
    uint64_t attributed_ns;  /* latest device time another claim was charged up to */
    uint64_t unpublished_ns; /* oldest uncharged work of another claim, 0 if none */
    uint32_t nwindows;       /* the other claims' busy windows of the last XPUSHARE_WINDOW_HORIZON_NS */
    uint32_t reserved;
    struct xpushare_window windows[256]; /* with, per claim with uncharged work, its open one (to now) */
};

/* Errors are negative errno values. */

/* Claim ledgers. */
XPUSHARE_EXTERN int xpushare_ledger_open(const char *path, const char *key, const char *uuid);
XPUSHARE_EXTERN struct xpushare_ledger *xpushare_ledger_map(int fd);
XPUSHARE_EXTERN int xpushare_ledger_unmap(struct xpushare_ledger *ledger);
XPUSHARE_EXTERN int xpushare_ledger_set_limits(struct xpushare_ledger *ledger, uint64_t limit_bytes,
                                               uint32_t core_percent, uint32_t priority, uint32_t policy);
XPUSHARE_EXTERN int xpushare_ledger_read_head(int fd, struct xpushare_ledger_head *out);
XPUSHARE_EXTERN int xpushare_ledger_attach(struct xpushare_ledger *ledger, int fd);
XPUSHARE_EXTERN int xpushare_ledger_detach(struct xpushare_ledger *ledger, int fd, int proc);
XPUSHARE_EXTERN int xpushare_ledger_reserve(struct xpushare_ledger *ledger, int proc, uint64_t bytes,
                                            uint64_t limit_bytes);
XPUSHARE_EXTERN int xpushare_ledger_release(struct xpushare_ledger *ledger, int proc, uint64_t bytes);
XPUSHARE_EXTERN int xpushare_ledger_reclaim(struct xpushare_ledger *ledger, int fd);
XPUSHARE_EXTERN int xpushare_proc_alive(int fd, int proc);

/* Compute shares (the rule in shares.c); `peers` NULL: the claim is alone on the device. */
XPUSHARE_EXTERN uint64_t xpushare_ledger_attribute(struct xpushare_ledger *ledger,
                                                   const struct xpushare_peers *peers, uint64_t start_ns,
                                                   uint64_t end_ns);
XPUSHARE_EXTERN uint64_t xpushare_ledger_share(struct xpushare_ledger *ledger, int proc,
                                               const struct xpushare_peers *peers, uint64_t start_ns,
                                               uint64_t end_ns);
XPUSHARE_EXTERN int xpushare_window_publish(struct xpushare_ledger *ledger, int proc, uint64_t start_ns,
                                            uint64_t end_ns);
XPUSHARE_EXTERN int xpushare_ledger_charge(struct xpushare_ledger *ledger, int proc, uint64_t device_ns);
XPUSHARE_EXTERN int xpushare_compute_pending(struct xpushare_ledger *ledger, int proc, int pending);
XPUSHARE_EXTERN int xpushare_compute_earlier_work(struct xpushare_ledger *ledger, int proc,
                                                  const struct xpushare_peers *peers, uint64_t recorded_ns);
XPUSHARE_EXTERN int xpushare_compute_publish(struct xpushare_ledger *ledger, int proc, uint64_t oldest_ns);
XPUSHARE_EXTERN int xpushare_compute_shadowed(struct xpushare_ledger *ledger, const struct xpushare_peers *peers,
                                              uint64_t now_ns);
XPUSHARE_EXTERN int64_t xpushare_compute_admit(struct xpushare_ledger *ledger, int proc,
                                               const struct xpushare_peers *peers, uint64_t now_ns,
                                               uint32_t max_percent);
XPUSHARE_EXTERN int xpushare_peers_add(struct xpushare_peers *peers, const struct xpushare_ledger_head *head,
                                       uint32_t priority, uint64_t now_ns);

/* Boards (the node plugin writes; shims map them read-only). */
XPUSHARE_EXTERN int xpushare_board_open(const char *path, const char *uuid, uint64_t total_bytes);
XPUSHARE_EXTERN int xpushare_board_check(int fd);
XPUSHARE_EXTERN struct xpushare_board *xpushare_board_map(int fd, int writable);
XPUSHARE_EXTERN int xpushare_board_unmap(struct xpushare_board *board);
XPUSHARE_EXTERN int xpushare_board_set(struct xpushare_board *board, const char *key, uint64_t limit_bytes,
                                       uint32_t core_percent, uint32_t priority, uint32_t policy);
XPUSHARE_EXTERN int xpushare_board_remove(struct xpushare_board *board, const char *key);
XPUSHARE_EXTERN int xpushare_board_read(const struct xpushare_board *board, int index,
                                        struct xpushare_board_entry *out, uint64_t *generation);
XPUSHARE_EXTERN int xpushare_board_find(const struct xpushare_board *board, const char *key,
                                        struct xpushare_board_entry *out, uint64_t *generation);
/* XPUSHARE_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* XPUSHARE_H */
