/*
 * glibc_compat.h - bind the shim to the oldest glibc symbol versions, so one build preloads into any
 * container image with glibc 2.17 or newer (CentOS 7, EulerOS and Ubuntu 18.04 based CANN and CUDA
 * images among them), whatever glibc the build host has.
 *
 * glibc 2.34 moved libdl and libpthread into libc under new symbol versions; a library linked on a new
 * host asks for those versions and fails to load ("version `GLIBC_2.34' not found") in older images.
 * Every newer glibc still exports the old versions, so binding to them loses nothing. The build passes
 * this header to every source with -include; a unit test checks the library needs nothing newer.
 * (dlvsym is not bound here: the shim defines it, the hook in dlsym.c, and finds glibc's in elfsym.c.)
 */
#ifndef XPUSHARE_GLIBC_COMPAT_H
#define XPUSHARE_GLIBC_COMPAT_H

#if defined(__x86_64__)
#define XPS__GLIBC_BASE "GLIBC_2.2.5"
#define XPS__GLIBC_ROBUST "GLIBC_2.12"
#elif defined(__aarch64__)
#define XPS__GLIBC_BASE "GLIBC_2.17"
#define XPS__GLIBC_ROBUST "GLIBC_2.17"
#endif

#ifdef XPS__GLIBC_BASE
#define XPS__BIND(symbol, version) __asm__(".symver " #symbol "," #symbol "@" version)
XPS__BIND(dladdr, XPS__GLIBC_BASE);
XPS__BIND(dlopen, XPS__GLIBC_BASE);
XPS__BIND(dlclose, XPS__GLIBC_BASE);
XPS__BIND(pthread_key_create, XPS__GLIBC_BASE);
XPS__BIND(pthread_setspecific, XPS__GLIBC_BASE);
XPS__BIND(pthread_once, XPS__GLIBC_BASE);
XPS__BIND(pthread_mutexattr_init, XPS__GLIBC_BASE);
XPS__BIND(pthread_mutexattr_destroy, XPS__GLIBC_BASE);
XPS__BIND(pthread_mutexattr_setpshared, XPS__GLIBC_BASE);
XPS__BIND(pthread_mutexattr_setrobust, XPS__GLIBC_ROBUST);
XPS__BIND(pthread_mutex_consistent, XPS__GLIBC_ROBUST);
#endif

#endif
