/*
 * ledger.c - the per-device ledger file: creation, mapping, the lock and its undo journal, container
 * records, and admission (reserve/release).
 *
 * Every update runs under the robust process-shared mutex stored in the file and writes an undo journal
 * first, so a process killed inside an update (SIGKILL included) never leaves the counters half-changed:
 * the next locker gets EOWNERDEAD, restores the journal and carries on. Admission is a check and an add
 * under that lock, so no two processes can both pass the limit check for the last bytes.
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
_Static_assert(XPUSHARE_MAX_PROCS == 1024 && XPUSHARE_MAX_CONTAINERS == 64, "arrays use literal sizes");
_Static_assert(XPUSHARE_KEY_LEN == 64, "key arrays use literal sizes");

static pthread_mutex_t *ledger_mutex(struct xpushare_ledger *ledger) {
    return (pthread_mutex_t *)(void *)ledger->lock;
}

static void journal_rollback(struct xpushare_ledger *ledger) {
    struct xpushare_journal *j = &ledger->journal;
    if (!j->active)
        return;
    if (j->container < XPUSHARE_MAX_CONTAINERS)
        ledger->containers[j->container] = j->saved_container;
    if (j->proc < XPUSHARE_MAX_PROCS)
        ledger->procs[j->proc] = j->saved_proc;
    ledger->used_bytes = j->used_bytes;
    ledger->peak_bytes = j->peak_bytes;
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
    __atomic_add_fetch(&ledger->generation, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(ledger_mutex(ledger));
}

/* Record what an update may touch; index XPUSHARE_MAX_* means "not touched". */
void xps__journal_begin(struct xpushare_ledger *ledger, uint32_t container, uint32_t proc) {
    struct xpushare_journal *j = &ledger->journal;
    j->container = container;
    j->proc = proc;
    if (container < XPUSHARE_MAX_CONTAINERS)
        j->saved_container = ledger->containers[container];
    if (proc < XPUSHARE_MAX_PROCS)
        j->saved_proc = ledger->procs[proc];
    j->used_bytes = ledger->used_bytes;
    j->peak_bytes = ledger->peak_bytes;
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

static int init_file(int fd, const char *uuid, uint64_t total_bytes) {
    if (ftruncate(fd, (off_t)sizeof(struct xpushare_ledger)) != 0)
        return -errno;
    struct xpushare_ledger *ledger = xpushare_ledger_map(fd);
    if (ledger == NULL)
        return -errno;
    ledger->version = XPUSHARE_LEDGER_VERSION;
    ledger->header_size = sizeof(struct xpushare_ledger);
    ledger->container_size = sizeof(struct xpushare_container);
    ledger->proc_size = sizeof(struct xpushare_proc);
    ledger->max_containers = XPUSHARE_MAX_CONTAINERS;
    ledger->max_procs = XPUSHARE_MAX_PROCS;
    strncpy(ledger->uuid, uuid ? uuid : "", sizeof(ledger->uuid) - 1);
    ledger->total_bytes = total_bytes;
    int rc = xps__init_robust_mutex(ledger_mutex(ledger));
    if (rc == 0)
        rc = xps__compute_init_lock(ledger);
    __atomic_store_n(&ledger->magic, (uint64_t)XPUSHARE_LEDGER_MAGIC, __ATOMIC_RELEASE);
    xpushare_ledger_unmap(ledger);
    return rc;
}

static int check_header(int fd) {
    struct xpushare_ledger head;
    ssize_t n = pread(fd, &head, offsetof(struct xpushare_ledger, uuid), 0);
    if (n != (ssize_t)offsetof(struct xpushare_ledger, uuid))
        return -EPROTO;
    if (head.magic != XPUSHARE_LEDGER_MAGIC || head.version != XPUSHARE_LEDGER_VERSION ||
        head.header_size != sizeof(struct xpushare_ledger) ||
        head.container_size != sizeof(struct xpushare_container) ||
        head.proc_size != sizeof(struct xpushare_proc))
        return -EPROTO;
    return 0;
}

/* Initialise an empty ledger file or check an existing one's layout, under flock against racing openers. */
int xps__ledger_prepare(int fd, const char *uuid, uint64_t total_bytes) {
    int rc = 0;
    if (flock(fd, LOCK_EX) != 0)
        return -errno;
    /* lseek rather than fstat: fstat is a glibc 2.33 symbol (see glibc_compat.h). */
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0)
        rc = -errno;
    else if (size == 0)
        rc = init_file(fd, uuid, total_bytes);
    if (rc == 0)
        rc = check_header(fd);
    flock(fd, LOCK_UN);
    return rc;
}

XPUSHARE_EXTERN int xpushare_ledger_open(const char *path, const char *uuid, uint64_t total_bytes) {
    if (path == NULL || path[0] == '\0')
        return -EINVAL;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return -errno;
    fchmod(fd, 0666); /* processes of every container on the device map it (umask would narrow it) */
    int rc = xps__ledger_prepare(fd, uuid, total_bytes);
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

int xps__find_container(struct xpushare_ledger *ledger, const char *key) {
    for (int i = 0; i < XPUSHARE_MAX_CONTAINERS; i++) {
        struct xpushare_container *c = &ledger->containers[i];
        if (c->state == XPUSHARE_SLOT_ACTIVE && strncmp(c->key, key, sizeof(c->key)) == 0)
            return i;
    }
    return -ENOENT;
}

static int free_container(struct xpushare_ledger *ledger) {
    for (int i = 0; i < XPUSHARE_MAX_CONTAINERS; i++)
        if (ledger->containers[i].state == XPUSHARE_SLOT_FREE)
            return i;
    return -ENOSPC;
}

XPUSHARE_EXTERN int xpushare_ledger_find_container(struct xpushare_ledger *ledger, const char *key) {
    if (ledger == NULL || key == NULL || key[0] == '\0' || strlen(key) >= XPUSHARE_KEY_LEN)
        return -EINVAL;
    int rc = xps__ledger_lock(ledger);
    if (rc != 0)
        return rc;
    rc = xps__find_container(ledger, key);
    xps__ledger_unlock(ledger);
    return rc;
}

/* Create or update a container's record (called with the lock held). */
int xps__set_container_locked(struct xpushare_ledger *ledger, const char *key, uint64_t limit_bytes,
                                uint32_t core_percent, uint32_t priority, uint32_t policy) {
    int i = xps__find_container(ledger, key);
    if (i < 0)
        i = free_container(ledger);
    if (i < 0)
        return i;
    xps__journal_begin(ledger, (uint32_t)i, XPUSHARE_MAX_PROCS);
    struct xpushare_container *c = &ledger->containers[i];
    if (c->state == XPUSHARE_SLOT_FREE) {
        memset(c, 0, sizeof(*c));
        strncpy(c->key, key, sizeof(c->key) - 1);
    }
    int changed = c->limit_bytes != limit_bytes || c->core_percent != core_percent ||
                  c->priority != priority || c->policy != policy;
    c->limit_bytes = limit_bytes;
    c->core_percent = core_percent;
    c->priority = priority;
    c->policy = policy;
    __atomic_store_n(&c->state, XPUSHARE_SLOT_ACTIVE, __ATOMIC_RELEASE);
    xps__journal_end(ledger);
    if (changed) /* running shims compare this one word to notice a quota change */
        __atomic_add_fetch(&ledger->quota_generation, 1, __ATOMIC_RELEASE);
    return i;
}

XPUSHARE_EXTERN int xpushare_ledger_set_container(struct xpushare_ledger *ledger, const char *key,
                                                  uint64_t limit_bytes, uint32_t core_percent,
                                                  uint32_t priority, uint32_t policy) {
    if (ledger == NULL || key == NULL || key[0] == '\0' || strlen(key) >= XPUSHARE_KEY_LEN ||
        core_percent > 100 || priority > XPUSHARE_PRIORITY_HIGH || policy > XPUSHARE_POLICY_FIXED)
        return -EINVAL;
    int rc = xps__ledger_lock(ledger);
    if (rc != 0)
        return rc;
    rc = xps__set_container_locked(ledger, key, limit_bytes, core_percent, priority, policy);
    xps__ledger_unlock(ledger);
    return rc;
}

XPUSHARE_EXTERN int xpushare_ledger_remove_container(struct xpushare_ledger *ledger, const char *key) {
    if (ledger == NULL || key == NULL || key[0] == '\0')
        return -EINVAL;
    int rc = xps__ledger_lock(ledger);
    if (rc != 0)
        return rc;
    int i = xps__find_container(ledger, key);
    if (i >= 0 && ledger->containers[i].nprocs > 0) {
        rc = -EBUSY;
    } else if (i >= 0) {
        xps__journal_begin(ledger, (uint32_t)i, XPUSHARE_MAX_PROCS);
        struct xpushare_container *c = &ledger->containers[i];
        ledger->used_bytes -= c->used_bytes < ledger->used_bytes ? c->used_bytes : ledger->used_bytes;
        memset(c, 0, sizeof(*c));
        xps__journal_end(ledger);
    } else {
        rc = i;
    }
    xps__ledger_unlock(ledger);
    return rc;
}

XPUSHARE_EXTERN int xpushare_ledger_reserve(struct xpushare_ledger *ledger, int proc, uint64_t bytes,
                                            uint64_t limit_bytes) {
    int rc = xps__lock_proc(ledger, proc);
    if (rc != 0)
        return rc;
    struct xpushare_proc *p = &ledger->procs[proc];
    struct xpushare_container *c = &ledger->containers[xps__proc_container(p)];
    uint64_t limit = limit_bytes;
    if (c->limit_bytes != 0 && (limit == 0 || c->limit_bytes < limit))
        limit = c->limit_bytes; /* the plugin may lower a running claim's limit, never raise the file's */
    if (p->state != XPUSHARE_SLOT_ACTIVE) {
        rc = -ESRCH;
    } else if (limit != 0 && (bytes > limit || c->used_bytes > limit - bytes)) {
        rc = -ENOMEM;
    } else {
        xps__journal_proc(ledger, proc);
        c->used_bytes += bytes;
        p->used_bytes += bytes;
        ledger->used_bytes += bytes;
        if (c->used_bytes > c->peak_bytes)
            c->peak_bytes = c->used_bytes;
        if (p->used_bytes > p->peak_bytes)
            p->peak_bytes = p->used_bytes;
        if (ledger->used_bytes > ledger->peak_bytes)
            ledger->peak_bytes = ledger->used_bytes;
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
        struct xpushare_container *c = xps__journal_proc(ledger, proc);
        if (bytes > p->used_bytes)
            bytes = p->used_bytes; /* never underflow, whatever the caller claims */
        p->used_bytes -= bytes;
        xps__uncount_bytes(ledger, c, bytes);
        xps__journal_end(ledger);
    }
    xps__ledger_unlock(ledger);
    return 0;
}

