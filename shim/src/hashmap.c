/*
 * hashmap.c - what each live allocation cost and on which device, so a free returns exactly that.
 *
 * Open addressing with linear probing and backward-shift deletion (no tombstones), one table per key
 * kind (device pointers, VMM handles). Tables are mapped once with mmap and never grow, so the hot path
 * never calls malloc; a tiny spinlock guards each table (held for a few probes).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/mman.h>

#include "internal.h"

#define MAP_BITS 18
#define MAP_CAPACITY (1u << MAP_BITS)
#define MAP_MAX_FILL (MAP_CAPACITY / 4 * 3)

struct entry {
    uint64_t key; /* 0 = empty */
    uint64_t size;
    int32_t dev;
    int32_t pad;
};

struct table {
    struct entry *slots;
    uint32_t count;
    int lock;
};

static struct table tables[XPS_MAP_COUNT];

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void spin_lock(int *lock) {
    while (__atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(lock, __ATOMIC_RELAXED))
            cpu_relax();
}

static void spin_unlock(int *lock) {
    __atomic_store_n(lock, 0, __ATOMIC_RELEASE);
}

static inline uint32_t slot_of(uint64_t key) {
    return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - MAP_BITS));
}

/* Map the table on first use (with the lock held); pages are touched only as entries land on them. */
static int ensure_slots(struct table *t) {
    if (t->slots != NULL)
        return 0;
    void *p = mmap(NULL, sizeof(struct entry) * MAP_CAPACITY, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -ENOMEM;
    __atomic_store_n(&t->slots, (struct entry *)p, __ATOMIC_RELEASE);
    return 0;
}

int xps__map_put(enum xps_map_kind kind, uint64_t key, uint64_t size, int dev) {
    struct table *t = &tables[kind];
    int rc = 0;
    key += 1; /* keep 0 free as the empty marker; a null pointer is then a valid key */
    spin_lock(&t->lock);
    if ((rc = ensure_slots(t)) == 0 && t->count >= MAP_MAX_FILL)
        rc = -ENOSPC;
    if (rc == 0) {
        uint32_t i = slot_of(key);
        while (t->slots[i].key != 0 && t->slots[i].key != key)
            i = (i + 1) & (MAP_CAPACITY - 1);
        if (t->slots[i].key == 0)
            t->count++;
        t->slots[i] = (struct entry){.key = key, .size = size, .dev = dev};
    }
    spin_unlock(&t->lock);
    return rc;
}

/* Remove slot i and shift later members of its probe run back, so lookups never need tombstones. */
static void remove_at(struct table *t, uint32_t i) {
    uint32_t mask = MAP_CAPACITY - 1;
    for (uint32_t j = (i + 1) & mask; t->slots[j].key != 0; j = (j + 1) & mask) {
        uint32_t home = slot_of(t->slots[j].key);
        /* Move j into the hole at i when its home is not cyclically within (i, j]. */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i].key = 0;
    t->count--;
}

int xps__map_take(enum xps_map_kind kind, uint64_t key, uint64_t *size, int *dev) {
    struct table *t = &tables[kind];
    int found = 0;
    key += 1;
    if (__atomic_load_n(&t->slots, __ATOMIC_ACQUIRE) == NULL)
        return 0;
    spin_lock(&t->lock);
    for (uint32_t i = slot_of(key); t->slots[i].key != 0; i = (i + 1) & (MAP_CAPACITY - 1)) {
        if (t->slots[i].key == key) {
            *size = t->slots[i].size;
            *dev = t->slots[i].dev;
            remove_at(t, i);
            found = 1;
            break;
        }
    }
    spin_unlock(&t->lock);
    return found;
}

/* In a forked child: the parent's allocations are not the child's to free. */
void xps__map_reset(void) {
    for (int k = 0; k < XPS_MAP_COUNT; k++) {
        struct table *t = &tables[k];
        t->lock = 0;
        if (t->slots != NULL) /* unmapping beats clearing: no copy-on-write of pages the child never needs */
            munmap(t->slots, sizeof(struct entry) * MAP_CAPACITY);
        t->slots = NULL;
        t->count = 0;
    }
}
