/*
 * dlsym.c - interception by resolved pointer: the dlsym, dlvsym and cuGetProcAddress hooks.
 *
 * Frameworks rarely call vendor functions by link-time name: PyTorch dlopens libcuda and asks
 * cuGetProcAddress for every driver entry point, with versions and per-thread-stream variants. Both
 * hooks let the real lookup run, then swap a returned real address the shim hooks for its hook;
 * everything else passes through untouched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>

#include "internal.h"

#define CUDA_SUCCESS 0
#define CUDA_ERROR_NOT_FOUND 500

/* A real address found for `name`: the hook when the shim hooks it, else the address itself. */
static void *hook_lookup(void *handle, const char *name, void *real) {
    if (name != NULL && name[0] == 'd') {
        /* The lookup functions themselves, from any handle: glibc's would look past the shim. */
        if (strcmp(name, "dlsym") == 0)
            return (void *)dlsym;
        if (strcmp(name, "dlvsym") == 0)
            return (void *)dlvsym;
    }
    int sym = xps__sym_by_name(name);
    if (sym >= 0) {
        void *hook = xps__hook_of(sym);
        if (real == hook)
            return real; /* the lookup already found the shim (RTLD_DEFAULT, RTLD_NEXT from the app) */
        if (handle != RTLD_NEXT && handle != RTLD_DEFAULT)
            xps__bind_family_from_handle(sym, handle);
        else
            xps__bind_family_from_pointer(sym, real);
        return hook != NULL ? hook : real;
    }
    void *hook = xps__hook_for_pointer(real);
    return hook != NULL ? hook : real;
}

/* One definition serves both glibc versions of dlsym: the shim's symbol carries no version, which
   the dynamic linker accepts for references to dlsym@GLIBC_2.2.5 and dlsym@GLIBC_2.34 alike. */
XPUSHARE_EXTERN void *dlsym(void *handle, const char *name) {
    void *real = xps__real_dlsym(handle, name);
    if (real == NULL || xps__guard)
        return real;
    return hook_lookup(handle, name, real);
}

/*
 * Versioned lookups: glibc's dlvsym asks for an exact version, which the shim's unversioned symbols never
 * match, so dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34") would reach glibc's dlsym and through it the real
 * vendor functions. The hook lets the real lookup run and answers as dlsym does (the hooks of dlsym,
 * dlvsym and every symbol the shim hooks), so versioned lookups lead to the same hooks.
 */
XPUSHARE_EXTERN void *dlvsym(void *handle, const char *name, const char *version) {
    void *real = xps__real_dlvsym(handle, name, version);
    if (real == NULL || xps__guard)
        return real;
    return hook_lookup(handle, name, real);
}

static void map_proc(void *real_gpa, void **pfn) {
    if (pfn == NULL || *pfn == NULL || xps__guard)
        return;
    xps__bind_family_from_pointer(XPS_SYM_cuGetProcAddress, real_gpa);
    void *hook = xps__hook_for_pointer(*pfn);
    if (hook != NULL)
        *pfn = hook;
}

typedef int (*gpa_fn)(const char *, void **, int, uint64_t);
typedef int (*gpa2_fn)(const char *, void **, int, uint64_t, void *);

XPUSHARE_EXTERN int cuGetProcAddress(const char *symbol, void **pfn, int version, uint64_t flags) {
    gpa_fn real = (gpa_fn)xps__real_fn(XPS_SYM_cuGetProcAddress);
    if (XPS_UNLIKELY(real == NULL))
        return CUDA_ERROR_NOT_FOUND;
    int rc = real(symbol, pfn, version, flags);
    if (rc == CUDA_SUCCESS)
        map_proc((void *)real, pfn);
    return rc;
}

XPUSHARE_EXTERN int cuGetProcAddress_v2(const char *symbol, void **pfn, int version, uint64_t flags,
                                        void *status) {
    gpa2_fn real = (gpa2_fn)xps__real_fn(XPS_SYM_cuGetProcAddress_v2);
    if (XPS_UNLIKELY(real == NULL))
        return CUDA_ERROR_NOT_FOUND;
    int rc = real(symbol, pfn, version, flags, status);
    if (rc == CUDA_SUCCESS)
        map_proc((void *)real, pfn);
    return rc;
}
