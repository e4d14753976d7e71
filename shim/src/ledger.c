/*
 * ledger.c - a claim's ledger of one device: creation, mapping, the lock and its undo journal, the
 * claim's limits, admission (reserve/release), and the bounded read of its head by others.
 *
 * Only the claim's own processes map the file and take its lock; the node plugin creates it (before any
 * container of the claim runs) and afterwards only reads its head with pread, and the device's other
 * claims do the same. So a tenant that corrupts, truncates or locks its ledger hurts its own processes
 * alone.
 *
 * Every update runs under the robust process-shared mutex stored in the file and writes an undo journal
 * first, so a process killed inside an update (SIGKILL included) never leaves the counters half-changed:
 * the next locker gets EOWNERDEAD, restores the journal and carries on. Admission is a check and an add
 * under that lock, so no two processes of the claim can both pass the limit check for the last bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

_Static_assert(sizeof(pthread_mutex_t) <= XPUSHARE_LOCK_BYTES, "mutex does not fit the ledger");
_Static_assert(XPUSHARE_MAX_PROCS == 1024 && XPUSHARE_MAX_CLAIMS == 64, "arrays use literal sizes");
_Static_assert(XPUSHARE_KEY_LEN == 64, "key arrays use literal sizes");

static pthread_mutex_t *ledger_mutex(struct xpushare_ledger *ledger) {
    return (pthread_mutex_t *)(void *)ledger->lock;
}

static void journal_rollback(struct xpushare_ledger *ledger) {
    struct xpushare_journal *j = &ledger->journal;
    if (!j->active)
        return;
    ledger->head.claim = j->saved_claim;
    if (j->proc < XPUSHARE_MAX_PROCS)
        ledger->procs[j->proc] = j->saved_proc;
    j->active = 0;
}

int xps__ledger_lock(struct xpushare_ledger *ledger) {
    int rc = pthread_mutex_lock(ledger_mutex(ledger));
    if (rc == EOWNERDEAD) {
        journal_rollback(ledger);
        pthread_mutex_consistent(ledger_mutex(ledger));
        xps__compute_recount(ledger); /* a restored process record may have changed its pending flag */
        rc = 0;
    }
    return -rc;
}

void xps__ledger_unlock(struct xpushare_ledger *ledger) {
    __atomic_add_fetch(&ledger->head.generation, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(ledger_mutex(ledger));
}

/* Record what an update may touch; proc XPUSHARE_MAX_PROCS means no process slot. */
void xps__journal_begin(struct xpushare_ledger *ledger, uint32_t proc) {
    struct xpushare_journal *j = &ledger->journal;
    j->proc = proc;
    j->saved_claim = ledger->head.claim;
    if (proc < XPUSHARE_MAX_PROCS)
        j->saved_proc = ledger->procs[proc];
    __atomic_store_n(&j->active, 1, __ATOMIC_RELEASE);
    /* Keep the update's stores after this one: a kill between them must find the journal active. */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

void xps__journal_end(struct xpushare_ledger *ledger) {
    __atomic_store_n(&ledger->journal.active, 0, __ATOMIC_RELEASE);
}

/* A robust process-shared mutex, as every lock stored in a ledger file is; 0 or -errno. */
int xps__init_robust_mutex(pthread_mutex_t *mutex) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(mutex, &attr);
    pthread_mutexattr_destroy(&attr);
    return -rc;
}

static void copy_key(char *dest, const char *src) {
    memset(dest, 0, XPUSHARE_KEY_LEN);
    if (src != NULL)
        strncpy(dest, src, XPUSHARE_KEY_LEN - 1);
}

static int init_file(int fd, const char *key, const char *uuid) {
    if (ftruncate(fd, (off_t)sizeof(struct xpushare_ledger)) != 0)
        return -errno;
    struct xpushare_ledger *ledger = xpushare_ledger_map(fd);
    if (ledger == NULL)
        return -errno;
    struct xpushare_ledger_head *h = &ledger->head;
    h->version = XPUSHARE_LEDGER_VERSION;
    h->head_size = sizeof(struct xpushare_ledger_head);
    h->ledger_size = sizeof(struct xpushare_ledger);
    h->proc_size = sizeof(struct xpushare_proc);
    h->max_procs = XPUSHARE_MAX_PROCS;
    copy_key(h->key, key);
    copy_key(h->uuid, uuid);
    h->claim.core_percent = 100;
    h->claim.priority = XPUSHARE_PRIORITY_NORMAL;
    int rc = xps__init_robust_mutex(ledger_mutex(ledger));
    if (rc == 0)
        rc = xps__compute_init_lock(ledger);
    __atomic_store_n(&h->magic, (uint64_t)XPUSHARE_LEDGER_MAGIC, __ATOMIC_RELEASE);
    xpushare_ledger_unmap(ledger);
    return rc;
}

/* Whether a head read from a file is a ledger of this layout (and of `key`/`uuid` when given). */
static int check_head(const struct xpushare_ledger_head *h, const char *key, const char *uuid) {
    if (h->magic != XPUSHARE_LEDGER_MAGIC || h->version != XPUSHARE_LEDGER_VERSION ||
        h->head_size != sizeof(struct xpushare_ledger_head) || h->ledger_size != sizeof(struct xpushare_ledger) ||
        h->proc_size != sizeof(struct xpushare_proc) || h->max_procs != XPUSHARE_MAX_PROCS)
        return -EPROTO;
    if (key != NULL && key[0] != '\0' && strncmp(h->key, key, XPUSHARE_KEY_LEN) != 0)
        return -EBADSLT; /* another claim's ledger: never join it */
    if (uuid != NULL && uuid[0] != '\0' && strncmp(h->uuid, uuid, XPUSHARE_KEY_LEN) != 0)
        return -EBADSLT;
    return 0;
}

/*
 * The head of a ledger by one pread: its size checked, its layout checked, nothing mapped or locked, so a
 * file its tenant truncated, rewrote or holds locked costs the reader one system call at most.
 */
XPUSHARE_EXTERN int xpushare_ledger_read_head(int fd, struct xpushare_ledger_head *out) {
    if (fd < 0 || out == NULL)
        return -EINVAL;
    ssize_t n = pread(fd, out, sizeof(*out), 0);
    if (n < 0)
        return -errno;
    if (n != (ssize_t)sizeof(*out)) {
        memset(out, 0, sizeof(*out));
        return -EPROTO;
    }
    out->key[XPUSHARE_KEY_LEN - 1] = '\0';
    out->uuid[XPUSHARE_KEY_LEN - 1] = '\0';
    return check_head(out, NULL, NULL);
}

/* Initialise an empty ledger file or check an existing one, under flock against racing openers. */
int xps__ledger_prepare(int fd, const char *key, const char *uuid) {
    int rc = 0;
    if (flock(fd, LOCK_EX) != 0)
        return -errno;
    /* lseek rather than fstat: fstat is a glibc 2.33 symbol (see glibc_compat.h). */
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0)
        rc = -errno;
    else if (size == 0)
        rc = init_file(fd, key, uuid);
    else if (size != (off_t)sizeof(struct xpushare_ledger))
        rc = -EPROTO;
    if (rc == 0) {
        struct xpushare_ledger_head head;
        rc = xpushare_ledger_read_head(fd, &head);
        if (rc == 0)
            rc = check_head(&head, key, uuid);
    }
    flock(fd, LOCK_UN);
    return rc;
}

/*
 * Open (creating when absent or empty) the ledger at `path` of claim `key` on device `uuid`; the file
 * descriptor, or -EPROTO for a file of another layout and -EBADSLT for another claim's or device's.
 * Created 0666: the claim's processes run under any user (only its containers get the file writable).
 */
XPUSHARE_EXTERN int xpushare_ledger_open(const char *path, const char *key, const char *uuid) {
    if (path == NULL || path[0] == '\0' || (key != NULL && strlen(key) >= XPUSHARE_KEY_LEN) ||
        (uuid != NULL && strlen(uuid) >= XPUSHARE_KEY_LEN))
        return -EINVAL;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0666);
    if (fd < 0)
        return -errno;
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    off_t size = lseek(fd, 0, SEEK_END);
    if (size == 0)
        fchmod(fd, 0666); /* not narrowed by the umask */
    int rc = size < 0 ? -errno : xps__ledger_prepare(fd, key, uuid);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    return fd;
}

XPUSHARE_EXTERN struct xpushare_ledger *xpushare_ledger_map(int fd) {
    void *p = mmap(NULL, sizeof(struct xpushare_ledger), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : (struct xpushare_ledger *)p;
}

XPUSHARE_EXTERN int xpushare_ledger_unmap(struct xpushare_ledger *ledger) {
    return munmap(ledger, sizeof(*ledger)) == 0 ? 0 : -errno;
}

static int valid_limits(uint32_t core_percent, uint32_t priority, uint32_t policy) {
    return core_percent <= 100 && priority <= XPUSHARE_PRIORITY_HIGH && policy <= XPUSHARE_POLICY_FIXED;
}

/* Copy the claim's limits (from the board, or the plugin's at creation); 1 if they changed. */
int xps__set_limits_locked(struct xpushare_ledger *ledger, uint64_t limit_bytes, uint32_t core_percent,
                           uint32_t priority, uint32_t policy) {
    struct xpushare_claim *c = &ledger->head.claim;
    if (c->limit_bytes == limit_bytes && c->core_percent == core_percent && c->priority == priority &&
        c->policy == policy)
        return 0;
    xps__journal_begin(ledger, XPUSHARE_MAX_PROCS);
    c->limit_bytes = limit_bytes;
    c->core_percent = core_percent;
    c->priority = priority;
    c->policy = policy;
    xps__journal_end(ledger);
    return 1;
}

XPUSHARE_EXTERN int xpushare_ledger_set_limits(struct xpushare_ledger *ledger, uint64_t limit_bytes,
                                               uint32_t core_percent, uint32_t priority, uint32_t policy) {
    if (ledger == NULL || !valid_limits(core_percent, priority, policy))
        return -EINVAL;
    int rc = xps__ledger_lock(ledger);
    if (rc != 0)
        return rc;
    rc = xps__set_limits_locked(ledger, limit_bytes, core_percent, priority, policy);
    xps__ledger_unlock(ledger);
    return rc;
}

XPUSHARE_EXTERN int xpushare_ledger_reserve(struct xpushare_ledger *ledger, int proc, uint64_t bytes,
                                            uint64_t limit_bytes) {
    int rc = xps__lock_proc(ledger, proc);
    if (rc != 0)
        return rc;
    struct xpushare_proc *p = &ledger->procs[proc];
    struct xpushare_claim *c = &ledger->head.claim;
    uint64_t limit = limit_bytes;
    if (c->limit_bytes != 0 && (limit == 0 || c->limit_bytes < limit))
        limit = c->limit_bytes; /* the board may lower a running claim's limit, never raise the file's */
    if (p->state != XPUSHARE_SLOT_ACTIVE) {
        rc = -ESRCH;
    } else if (limit != 0 && (bytes > limit || c->used_bytes > limit - bytes)) {
        rc = -ENOMEM;
    } else {
        xps__journal_begin(ledger, (uint32_t)proc);
        c->used_bytes += bytes;
        p->used_bytes += bytes;
        if (c->used_bytes > c->peak_bytes)
            c->peak_bytes = c->used_bytes;
        if (p->used_bytes > p->peak_bytes)
            p->peak_bytes = p->used_bytes;
        xps__journal_end(ledger);
    }
    xps__ledger_unlock(ledger);
    return rc;
}

XPUSHARE_EXTERN int xpushare_ledger_release(struct xpushare_ledger *ledger, int proc, uint64_t bytes) {
    int rc = xps__lock_proc(ledger, proc);
    if (rc != 0)
        return rc;
    struct xpushare_proc *p = &ledger->procs[proc];
    if (p->state == XPUSHARE_SLOT_ACTIVE) {
        xps__journal_begin(ledger, (uint32_t)proc);
        if (bytes > p->used_bytes)
            bytes = p->used_bytes; /* never underflow, whatever the caller claims */
        p->used_bytes -= bytes;
        xps__uncount_bytes(&ledger->head.claim, bytes);
        xps__journal_end(ledger);
    }
    xps__ledger_unlock(ledger);
    return 0;
}
