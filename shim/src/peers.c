/*
 * peers.c - what a process knows of the device's other claims: their board entries (priority, written by
 * the node plugin) and the heads of their ledgers (activity, written by them).
 *
 * The list of peers is rebuilt from the board when its generation changes; their heads are read again
 * at most every XPUSHARE_PEERS_REFRESH_NS, or at once when the caller needs them fresh (before charging
 * completed work: the order of charges between claims depends on what the others have not charged
 * yet, and a stale view lets a claim charge first and the other be charged nothing).
 *
 * A peer's ledger is read with one pread of its head through a descriptor kept open per board entry:
 * never mapped (a truncate cannot fault this process), never locked (a held lock cannot stall it), and a
 * head of another layout, of another claim or cut short counts as an idle peer. So does a claim whose
 * head says it has work on the device while none of its processes is alive (all killed with work
 * queued: only the claim's own processes could clean its ledger up), told by its processes' liveness
 * locks (one F_OFD_GETLK over them all). The path is opened again, at most every PEER_RECHECK_NS, while
 * a peer cannot be read or looks idle: the plugin creates a claim's ledger just after its board entry,
 * and replaces (new file, same board entry) a ledger that was damaged or left by an unprepared claim of
 * the same UID, so the descriptor opened first may name no file, or an old one. Called with the
 * device's compute mutex held (compute.c), which serialises the refreshes of one device.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define PEER_RECHECK_NS 50000000ull /* a peer's path reopened, or its liveness tested, at most this often */

struct peer {
    int fd;                      /* its ledger, opened read-only; -1 when it cannot be opened */
    uint32_t priority;           /* the board's, never its own file's */
    int reopen;                  /* unreadable or idle at the last read: its path may name another file */
    int alive;                   /* whether one of its processes held a liveness lock at the last test */
    uint64_t opened_ns;          /* when its path was last opened, 0 never */
    uint64_t tested_ns;          /* when its liveness was last tested, 0 not since it was opened */
    uint64_t tested_generation;  /* its ledger's generation then (found dead: tested again once it moves) */
    char key[XPUSHARE_KEY_LEN];
};

struct peer_cache {
    int initialised;
    uint64_t board_gen;          /* the board generation the list was built at */
    uint64_t refreshed_ns;       /* when the heads were last read, 0 never */
    int npeers;
    struct peer peers[XPUSHARE_MAX_CLAIMS];
    struct xpushare_peers view;
};

static struct peer_cache caches[XPUSHARE_MAX_DEVICES];

/* A claim UID as a file name under the peers' directory: no separators, no dot names. */
static int safe_name(const char *key) {
    return key[0] != '\0' && key[0] != '.' && strchr(key, '/') == NULL;
}

static int open_peer(const char *board_path, const char *key) {
    const char *slash = strrchr(board_path, '/');
    size_t dir_len = slash != NULL ? (size_t)(slash - board_path) + 1 : 0;
    char path[sizeof(((struct xps_limit *)0)->board) + XPUSHARE_KEY_LEN + 16];
    if (!safe_name(key) || dir_len + sizeof(XPUSHARE_CLAIMS_DIR) + strlen(key) + 1 >= sizeof(path))
        return -1;
    size_t key_len = strlen(key);
    memcpy(path, board_path, dir_len); /* lengths checked above: no truncation to warn about */
    memcpy(path + dir_len, XPUSHARE_CLAIMS_DIR "/", sizeof(XPUSHARE_CLAIMS_DIR));
    memcpy(path + dir_len + sizeof(XPUSHARE_CLAIMS_DIR), key, key_len + 1);
    return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
}

static struct peer *find_peer(struct peer *peers, int n, const char *key) {
    for (int i = 0; i < n; i++)
        if (strncmp(peers[i].key, key, XPUSHARE_KEY_LEN) == 0)
            return &peers[i];
    return NULL;
}

/* The board's other claims, keeping what is known of those already listed; 0, or -EAGAIN mid-write. New
 * peers are opened by the next read of the heads, which follows every rebuild. */
static int rebuild(struct peer_cache *cache, const struct xpushare_board *board, int dev) {
    struct peer next[XPUSHARE_MAX_CLAIMS];
    int n = 0;
    for (int i = 0; i < XPUSHARE_MAX_CLAIMS; i++) {
        struct xpushare_board_entry entry;
        int rc = xpushare_board_read(board, i, &entry, NULL);
        if (rc == -EAGAIN)
            return -EAGAIN; /* nothing changed yet: keep the old list */
        if (rc != 1 || xps__own_claim(dev, entry.key))
            continue;
        struct peer *known = find_peer(cache->peers, cache->npeers, entry.key);
        if (known != NULL) {
            next[n] = *known;
            known->fd = -1; /* moved to the new list */
        } else {
            memset(&next[n], 0, sizeof(next[n]));
            next[n].fd = -1;
            memcpy(next[n].key, entry.key, XPUSHARE_KEY_LEN);
        }
        next[n].priority = entry.priority % 3; /* the board may have changed it */
        n++;
    }
    for (int i = 0; i < cache->npeers; i++)
        if (cache->peers[i].fd >= 0)
            close(cache->peers[i].fd); /* claims that left the board */
    memcpy(cache->peers, next, sizeof(next[0]) * (size_t)n);
    cache->npeers = n;
    return 0;
}

/* Whether a process of the claim holds its liveness lock; on doubt, yes. */
static int any_alive(int fd) {
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = (off_t)XPUSHARE_LIVENESS_BASE,
                       .l_len = XPUSHARE_MAX_PROCS};
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
        return 1;
    return fl.l_type != F_UNLCK;
}

static int due(uint64_t last, uint64_t now) {
    return last == 0 || now < last || now - last >= PEER_RECHECK_NS;
}

/* Peer p's head, if it is usable and says what the claim does now; 0 when it counts as an idle peer. */
static int read_peer(struct peer *p, const char *board_path, uint64_t now, struct xpushare_ledger_head *head) {
    if ((p->fd < 0 || p->reopen) && due(p->opened_ns, now)) {
        if (p->fd >= 0)
            close(p->fd);
        p->fd = open_peer(board_path, p->key);
        p->opened_ns = now;
        p->tested_ns = 0;
    }
    p->reopen = 1;
    if (p->fd < 0 || xpushare_ledger_read_head(p->fd, head) != 0 ||
        strncmp(head->key, p->key, XPUSHARE_KEY_LEN) != 0)
        return 0; /* no file, another layout, cut short, another claim's */
    if (head->claim.npending == 0 && head->claim.unpublished_ns == 0 && !xps__recently_active(head, now))
        return 1; /* idle: nothing to trust but timestamps, which are clamped */
    /* Alive: tested again every PEER_RECHECK_NS. Dead: until its ledger changes (a new process joins
     * under the lock, which moves the generation) or its path is opened again. */
    if (p->tested_ns == 0 || (p->alive ? due(p->tested_ns, now) : head->generation != p->tested_generation)) {
        p->alive = any_alive(p->fd);
        p->tested_ns = now;
        p->tested_generation = head->generation;
    }
    if (!p->alive)
        return 0; /* its work (or its claim to have just had some) died with its processes */
    p->reopen = 0;
    return 1;
}

static void read_heads(struct peer_cache *cache, const char *board_path, uint64_t now) {
    struct xpushare_peers view;
    memset(&view, 0, sizeof(view));
    for (int i = 0; i < cache->npeers; i++) {
        struct peer *p = &cache->peers[i];
        struct xpushare_ledger_head head;
        if (read_peer(p, board_path, now, &head))
            xpushare_peers_add(&view, &head, p->priority, now);
        else
            view.count++; /* there, but nothing usable published: an idle peer */
    }
    cache->view = view;
    cache->refreshed_ns = now;
}

const struct xpushare_peers *xps__peers(int dev, uint64_t now, int fresh) {
    if (dev < 0 || dev >= XPUSHARE_MAX_DEVICES)
        return NULL;
    int own = -1, proc = -1;
    const struct xps_limit *limit = NULL;
    const struct xpushare_board *board = xps__device_board(dev, &own);
    if (board == NULL || xps__device_ledger(dev, &proc, &limit) == NULL)
        return NULL; /* no board: the claim acts as if alone on the device */
    struct peer_cache *cache = &caches[dev];
    int saved = errno;
    uint64_t gen = __atomic_load_n(&board->generation, __ATOMIC_ACQUIRE);
    if (!cache->initialised || gen != cache->board_gen) {
        if (rebuild(cache, board, dev) == 0) {
            cache->initialised = 1;
            cache->board_gen = gen;
            fresh = 1;
        }
    }
    if (fresh || cache->refreshed_ns == 0 || now < cache->refreshed_ns ||
        now - cache->refreshed_ns >= XPUSHARE_PEERS_REFRESH_NS)
        read_heads(cache, limit->board, now);
    errno = saved;
    return &cache->view;
}

/* In a forked child: the descriptors are the parent's copies; read again from scratch. */
void xps__peers_reset(void) {
    for (int d = 0; d < XPUSHARE_MAX_DEVICES; d++) {
        struct peer_cache *cache = &caches[d];
        for (int i = 0; i < cache->npeers; i++)
            if (cache->peers[i].fd >= 0)
                close(cache->peers[i].fd);
        memset(cache, 0, sizeof(*cache));
    }
}
