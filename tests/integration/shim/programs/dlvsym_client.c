/*
 * dlvsym_client - a tenant that looks past the shim with versioned lookups (glibc's dlvsym asks for an
 * exact version, which the shim's unversioned symbols never match).
 *
 *   dlvsym_client ROUTE BYTES
 *
 * ROUTE picks how it reaches cuMemAlloc_v2, each time starting from dlvsym (the driver's own symbols carry
 * no version, so glibc's dlvsym finds only glibc's lookup functions, and the driver through them):
 *   dlsym     dlvsym(RTLD_NEXT, "dlsym", <glibc version>), then that dlsym(libcuda, "cuMemAlloc_v2")
 *   dlvsym    dlvsym(RTLD_NEXT, "dlvsym", <version>), through it dlsym, then dlsym(libcuda, ..)
 *   gpa       the versioned dlsym(libcuda, "cuGetProcAddress"), then cuGetProcAddress("cuMemAlloc", ..)
 *   gpa_v2    likewise with cuGetProcAddress_v2
 * and allocates BYTES with it; prints "alloc rc=<code>".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*init_fn)(unsigned);
typedef int (*ctx_fn)(void **, unsigned, int);
typedef int (*alloc_fn)(unsigned long long *, size_t);
typedef int (*gpa_fn)(const char *, void **, int, unsigned long long);
typedef int (*gpa2_fn)(const char *, void **, int, unsigned long long, int *);
typedef void *(*dlsym_fn)(void *, const char *);
typedef void *(*dlvsym_fn)(void *, const char *, const char *);

static const char *const versions[] = {"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17"};

static void *versioned(dlvsym_fn look, const char *name) {
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        void *p = look(RTLD_NEXT, name, versions[i]);
        if (p != NULL)
            return p;
    }
    fprintf(stderr, "no versioned %s\n", name);
    exit(3);
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    const char *route = argv[1];
    size_t bytes = strtoull(argv[2], NULL, 10);
    void *cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (cuda == NULL)
        return 4;
    dlsym_fn lookup = (dlsym_fn)versioned(dlvsym, "dlsym");
    alloc_fn alloc = NULL;
    if (strcmp(route, "dlsym") == 0) {
        alloc = (alloc_fn)lookup(cuda, "cuMemAlloc_v2");
    } else if (strcmp(route, "dlvsym") == 0) {
        dlvsym_fn vlookup = (dlvsym_fn)versioned(dlvsym, "dlvsym");
        lookup = (dlsym_fn)versioned(vlookup, "dlsym");
        alloc = (alloc_fn)lookup(cuda, "cuMemAlloc_v2");
    } else if (strcmp(route, "gpa") == 0) {
        gpa_fn gpa = (gpa_fn)lookup(cuda, "cuGetProcAddress");
        if (gpa == NULL || gpa("cuMemAlloc", (void **)&alloc, 12000, 0) != 0)
            return 5;
    } else if (strcmp(route, "gpa_v2") == 0) {
        gpa2_fn gpa = (gpa2_fn)lookup(cuda, "cuGetProcAddress_v2");
        int status = 0;
        if (gpa == NULL || gpa("cuMemAlloc", (void **)&alloc, 12000, 0, &status) != 0)
            return 5;
    } else {
        return 2;
    }
    if (alloc == NULL)
        return 6;
    init_fn init = (init_fn)lookup(cuda, "cuInit");
    ctx_fn ctx_create = (ctx_fn)lookup(cuda, "cuCtxCreate_v2");
    void *ctx = NULL;
    if (init == NULL || ctx_create == NULL || init(0) != 0 || ctx_create(&ctx, 0, 0) != 0)
        return 7;
    unsigned long long ptr = 0;
    printf("alloc rc=%d\n", alloc(&ptr, bytes));
    return 0;
}
