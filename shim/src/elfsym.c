/*
 * elfsym.c - find glibc's own dlvsym without a symbol lookup.
 *
 * The shim exports dlvsym (dlsym.c), so every reference to dlvsym in the process, the shim's own
 * included, binds to the hook; and dlsym, the other way to look a symbol up, is hooked too. The real
 * dlvsym is read here from the dynamic symbol table of the library that defines it (libc.so.6 since glibc
 * 2.34, libdl.so.2 before), found with dl_iterate_phdr. Runs once, on the first lookup.
 */
#define _GNU_SOURCE
#include <link.h>
#include <string.h>

#include "internal.h"

struct search {
    const char *name;
    void *self;  /* the shim's hook: the shim's own table is skipped */
    void *found;
};

static uintptr_t dyn_ptr(const struct dl_phdr_info *info, uintptr_t ptr) {
    /* glibc relocates most objects' dynamic entries in place; the vDSO's and some others' are not. */
    return ptr < info->dlpi_addr ? info->dlpi_addr + ptr : ptr;
}

static const ElfW(Sym) *gnu_lookup(const uint32_t *table, const ElfW(Sym) *symtab, const char *strtab,
                                   const char *name) {
    uint32_t nbuckets = table[0], symoffset = table[1], bloom_size = table[2];
    if (nbuckets == 0)
        return NULL;
    const ElfW(Addr) *bloom = (const ElfW(Addr) *)(const void *)&table[4];
    const uint32_t *buckets = (const uint32_t *)(const void *)&bloom[bloom_size];
    const uint32_t *chain = &buckets[nbuckets];
    uint32_t h = 5381;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = h * 33 + *p;
    uint32_t i = buckets[h % nbuckets];
    if (i < symoffset)
        return NULL;
    for (;; i++) {
        uint32_t h2 = chain[i - symoffset];
        if ((h | 1) == (h2 | 1) && strcmp(strtab + symtab[i].st_name, name) == 0)
            return &symtab[i];
        if (h2 & 1)
            return NULL;
    }
}

static const ElfW(Sym) *sysv_lookup(const uint32_t *table, const ElfW(Sym) *symtab, const char *strtab,
                                    const char *name) {
    uint32_t nbucket = table[0];
    if (nbucket == 0)
        return NULL;
    const uint32_t *bucket = &table[2], *chain = &bucket[nbucket];
    uint32_t h = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h = (h << 4) + *p;
        uint32_t g = h & 0xf0000000u;
        h ^= g >> 24;
        h &= ~g;
    }
    for (uint32_t i = bucket[h % nbucket]; i != 0; i = chain[i])
        if (strcmp(strtab + symtab[i].st_name, name) == 0)
            return &symtab[i];
    return NULL;
}

static int search_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct search *s = data;
    const char *base = strrchr(info->dlpi_name, '/');
    base = base != NULL ? base + 1 : info->dlpi_name;
    if (strncmp(base, "libc.so", 7) != 0 && strncmp(base, "libdl.so", 8) != 0)
        return 0;
    const ElfW(Dyn) *dyn = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    if (dyn == NULL)
        return 0;
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const uint32_t *gnu = NULL, *sysv = NULL;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        if (dyn->d_tag == DT_SYMTAB)
            symtab = (const ElfW(Sym) *)dyn_ptr(info, dyn->d_un.d_ptr);
        else if (dyn->d_tag == DT_STRTAB)
            strtab = (const char *)dyn_ptr(info, dyn->d_un.d_ptr);
        else if (dyn->d_tag == DT_GNU_HASH)
            gnu = (const uint32_t *)dyn_ptr(info, dyn->d_un.d_ptr);
        else if (dyn->d_tag == DT_HASH)
            sysv = (const uint32_t *)dyn_ptr(info, dyn->d_un.d_ptr);
    }
    if (symtab == NULL || strtab == NULL)
        return 0;
    const ElfW(Sym) *sym = gnu != NULL ? gnu_lookup(gnu, symtab, strtab, s->name)
                                       : sysv != NULL ? sysv_lookup(sysv, symtab, strtab, s->name) : NULL;
    if (sym == NULL || sym->st_shndx == SHN_UNDEF || ELF64_ST_TYPE(sym->st_info) != STT_FUNC)
        return 0;
    void *address = (void *)(info->dlpi_addr + sym->st_value);
    if (address == s->self)
        return 0;
    s->found = address;
    return 1;
}

void *xps__libc_function(const char *name, void *self) {
    struct search s = {name, self, NULL};
    dl_iterate_phdr(search_object, &s);
    return s.found;
}
