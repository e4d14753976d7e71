/*
 * A fake libascendcl.so: the ACL entry points a framework calls, each built on the fake libruntime.so
 * the way CANN's ACL is built on RTS (aclrtMalloc calls rtMalloc, aclrtGetMemInfo calls rtMemGetInfoEx,
 * aclrtSynchronizeDevice calls rtDeviceSynchronize, aclrtMemcpy calls rtMemcpy), each through the PLT, so
 * a shim hooking the rt level limits and accounts for ACL users.
 */
#include <stddef.h>
#include <stdint.h>

#define EXPORT __attribute__((visibility("default")))
#define ACL_SUCCESS 0
#define RT_MEMORY_HBM 2u

int rtSetDevice(int32_t dev);
int rtGetDevice(int32_t *dev);
int rtMalloc(void **ptr, uint64_t size, uint32_t type, uint16_t module);
int rtFree(void *ptr);
int rtMallocPhysical(void **handle, size_t size, const void *prop, uint64_t flags);
int rtFreePhysical(void *handle);
int rtMemGetInfoEx(uint32_t type, size_t *free_bytes, size_t *total_bytes);
int rtKernelLaunch(const void *stub, uint32_t dim, void *args, uint32_t size, void *sm, void *s);
int rtDeviceSynchronize(void);
int rtDeviceSynchronizeWithTimeout(int32_t timeout);
int rtStreamSynchronize(void *stream);
int rtStreamSynchronizeWithTimeout(void *stream, int32_t timeout);
int rtMemcpy(void *dst, uint64_t dest_max, const void *src, uint64_t count, int kind);

EXPORT int aclInit(const char *config) {
    (void)config;
    return ACL_SUCCESS;
}
EXPORT int aclrtSetDevice(int32_t dev) { return rtSetDevice(dev); }
EXPORT int aclrtGetDevice(int32_t *dev) { return rtGetDevice(dev); }
EXPORT int aclrtMalloc(void **ptr, size_t size, int policy) {
    (void)policy;
    return rtMalloc(ptr, size, RT_MEMORY_HBM, 0);
}
EXPORT int aclrtFree(void *ptr) { return rtFree(ptr); }
EXPORT int aclrtMallocPhysical(void **handle, size_t size, const void *prop, uint64_t flags) {
    return rtMallocPhysical(handle, size, prop, flags);
}
EXPORT int aclrtFreePhysical(void *handle) { return rtFreePhysical(handle); }
EXPORT int aclrtGetMemInfo(uint32_t attr, size_t *free_bytes, size_t *total_bytes) {
    return rtMemGetInfoEx(attr, free_bytes, total_bytes);
}
EXPORT int aclrtLaunchKernel(const void *stub, uint32_t dim, void *args, uint32_t size, void *stream) {
    return rtKernelLaunch(stub, dim, args, size, NULL, stream);
}
EXPORT int aclrtSynchronizeDevice(void) { return rtDeviceSynchronize(); }
EXPORT int aclrtSynchronizeDeviceWithTimeout(int32_t timeout) {
    return rtDeviceSynchronizeWithTimeout(timeout);
}
EXPORT int aclrtSynchronizeStream(void *stream) { return rtStreamSynchronize(stream); }
EXPORT int aclrtSynchronizeStreamWithTimeout(void *stream, int32_t timeout) {
    return rtStreamSynchronizeWithTimeout(stream, timeout);
}
/* aclrtMemcpyKind (host to host, host to device, device to host, device to device) maps onto the rt kinds
 * of the same order. */
EXPORT int aclrtMemcpy(void *dst, size_t dest_max, const void *src, size_t count, int kind) {
    return rtMemcpy(dst, dest_max, src, count, kind);
}
