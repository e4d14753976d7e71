/*
 * A fake libnvidia-ml.so.1 that answers as NVIDIA's library does, so the real discovery backend (pynvml)
 * and C callers can be tested on machines without a GPU.
 *
 * Configuration: FAKE_NVML_CONFIG names a text file of "key=value" lines; "[device]" starts a device.
 * Global keys: driver_version, cuda_version (e.g. 12040), init_error (an nvmlReturn_t that nvmlInit*
 * returns). Device keys: name, uuid, memory_mib, used_mib, bus_id (NVML's "00000000:18:00.0" form),
 * pci_device_id, minor, numa (-1: not supported), sm_count (0: attributes not supported), lost (1: every
 * per-device query answers NVML_ERROR_GPU_IS_LOST), xid (an XID critical error that an event set
 * registered for nvmlEventTypeXidCriticalError delivers once per new value), persistence (0/1), mig (0/1;
 * -1: NOT_SUPPORTED). The file is read again whenever it changes, so a
 * test can make a device fall off the bus after initialisation. Without FAKE_NVML_CONFIG, nvmlInit
 * fails with NVML_ERROR_DRIVER_NOT_LOADED, as on a host without the kernel driver.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nvml_types.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_DEVICES 16
#define TEXT_LEN 96

struct nvmlDevice_st {
    char name[TEXT_LEN];
    char uuid[TEXT_LEN];
    char bus_id[TEXT_LEN];
    unsigned long long memory_mib;
    unsigned long long used_mib;
    unsigned int pci_device_id;
    unsigned int minor;
    int numa;
    unsigned int sm_count;
    int lost;
    unsigned long long xid;
    int persistence; /* 0 or 1 */
    int mig;         /* 0, 1, or -1: the GPU has no MIG (NOT_SUPPORTED) */
};

struct nvmlEventSet_st {
    unsigned long long types[MAX_DEVICES];
};

static struct {
    char driver_version[TEXT_LEN];
    int cuda_version;
    int init_error;
    unsigned int count;
    struct nvmlDevice_st devices[MAX_DEVICES];
} config;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int init_count;
static unsigned long long delivered_xid[MAX_DEVICES];
static struct timespec loaded_mtime;
static off_t loaded_size = -1;
static char loaded_path[4096];

static void copy_text(char *dest, const char *value) {
    snprintf(dest, TEXT_LEN, "%s", value);
}

static void set_global(const char *key, const char *value) {
    if (strcmp(key, "driver_version") == 0) copy_text(config.driver_version, value);
    else if (strcmp(key, "cuda_version") == 0) config.cuda_version = atoi(value);
    else if (strcmp(key, "init_error") == 0) config.init_error = atoi(value);
}

static void set_device(struct nvmlDevice_st *dev, const char *key, const char *value) {
    if (strcmp(key, "name") == 0) copy_text(dev->name, value);
    else if (strcmp(key, "uuid") == 0) copy_text(dev->uuid, value);
    else if (strcmp(key, "bus_id") == 0) copy_text(dev->bus_id, value);
    else if (strcmp(key, "memory_mib") == 0) dev->memory_mib = strtoull(value, NULL, 0);
    else if (strcmp(key, "used_mib") == 0) dev->used_mib = strtoull(value, NULL, 0);
    else if (strcmp(key, "pci_device_id") == 0) dev->pci_device_id = (unsigned int)strtoul(value, NULL, 0);
    else if (strcmp(key, "minor") == 0) dev->minor = (unsigned int)atoi(value);
    else if (strcmp(key, "numa") == 0) dev->numa = atoi(value);
    else if (strcmp(key, "sm_count") == 0) dev->sm_count = (unsigned int)atoi(value);
    else if (strcmp(key, "lost") == 0) dev->lost = atoi(value);
    else if (strcmp(key, "xid") == 0) dev->xid = strtoull(value, NULL, 0);
    else if (strcmp(key, "persistence") == 0) dev->persistence = atoi(value);
    else if (strcmp(key, "mig") == 0) dev->mig = atoi(value);
}

static void strip(char *text) {
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ')) text[--len] = 0;
}

static void parse(FILE *file) {
    char line[256];
    struct nvmlDevice_st *current = NULL;
    memset(&config, 0, sizeof(config));
    while (fgets(line, sizeof(line), file) != NULL) {
        strip(line);
        if (line[0] == '#' || line[0] == 0) continue;
        if (strcmp(line, "[device]") == 0) {
            current = config.count < MAX_DEVICES ? &config.devices[config.count++] : NULL;
            if (current != NULL) current->numa = current->mig = -1; /* defaults: no NUMA, no MIG */
            continue;
        }
        char *equals = strchr(line, '=');
        if (equals == NULL) continue;
        *equals = 0;
        if (current != NULL) set_device(current, line, equals + 1);
        else set_global(line, equals + 1);
    }
}

/* Load the configuration if it changed since the last call; returns 0 when a configuration exists. */
static int refresh(void) {
    const char *path = getenv("FAKE_NVML_CONFIG");
    struct stat info;
    if (path == NULL || stat(path, &info) != 0) return -1;
    if (strcmp(path, loaded_path) == 0 && info.st_size == loaded_size && info.st_mtim.tv_sec == loaded_mtime.tv_sec &&
        info.st_mtim.tv_nsec == loaded_mtime.tv_nsec) {
        return 0;
    }
    FILE *file = fopen(path, "r");
    if (file == NULL) return -1;
    parse(file);
    fclose(file);
    loaded_mtime = info.st_mtim;
    loaded_size = info.st_size;
    snprintf(loaded_path, sizeof(loaded_path), "%s", path);
    return 0;
}

static nvmlReturn_t check_ready(void) {
    if (init_count == 0) return NVML_ERROR_UNINITIALIZED;
    pthread_mutex_lock(&lock);
    refresh();
    pthread_mutex_unlock(&lock);
    return NVML_SUCCESS;
}

static nvmlReturn_t check_device(nvmlDevice_t device) {
    nvmlReturn_t ready = check_ready();
    if (ready != NVML_SUCCESS) return ready;
    if (device == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (device < config.devices || device >= config.devices + config.count) return NVML_ERROR_GPU_IS_LOST;
    return device->lost ? NVML_ERROR_GPU_IS_LOST : NVML_SUCCESS;
}

static nvmlReturn_t copy_string(char *dest, unsigned int length, const char *value) {
    if (dest == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(value) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(dest, value, strlen(value) + 1);
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    pthread_mutex_lock(&lock);
    nvmlReturn_t result = NVML_SUCCESS;
    if (refresh() != 0) result = NVML_ERROR_DRIVER_NOT_LOADED;
    else if (config.init_error != 0) result = (nvmlReturn_t)config.init_error;
    else {
        if (init_count++ == 0) memset(delivered_xid, 0, sizeof(delivered_xid));
    }
    pthread_mutex_unlock(&lock);
    return result;
}

EXPORT nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
EXPORT nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

EXPORT nvmlReturn_t nvmlShutdown(void) {
    pthread_mutex_lock(&lock);
    nvmlReturn_t result = init_count > 0 ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
    if (init_count > 0) init_count--;
    pthread_mutex_unlock(&lock);
    return result;
}

EXPORT const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch.";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    default: return "Unknown Error";
    }
}

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    nvmlReturn_t ready = check_ready();
    return ready != NVML_SUCCESS ? ready : copy_string(version, length, config.driver_version);
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version) {
    nvmlReturn_t ready = check_ready();
    if (ready != NVML_SUCCESS) return ready;
    if (version == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *version = config.cuda_version;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version) {
    return nvmlSystemGetCudaDriverVersion(version);
}

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    nvmlReturn_t ready = check_ready();
    if (ready != NVML_SUCCESS) return ready;
    if (count == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *count = config.count;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int *count) { return nvmlDeviceGetCount_v2(count); }

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    nvmlReturn_t ready = check_ready();
    if (ready != NVML_SUCCESS) return ready;
    if (device == NULL || index >= config.count) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &config.devices[index];
    return config.devices[index].lost ? NVML_ERROR_GPU_IS_LOST : NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device) {
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
    nvmlReturn_t ready = check_ready();
    if (ready != NVML_SUCCESS) return ready;
    if (uuid == NULL || device == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned int i = 0; i < config.count; i++) {
        if (strcmp(config.devices[i].uuid, uuid) == 0) {
            *device = &config.devices[i];
            return config.devices[i].lost ? NVML_ERROR_GPU_IS_LOST : NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    nvmlReturn_t status = check_device(device);
    return status != NVML_SUCCESS ? status : copy_string(name, length, device->name);
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    nvmlReturn_t status = check_device(device);
    return status != NVML_SUCCESS ? status : copy_string(uuid, length, device->uuid);
}

EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index) {
    nvmlReturn_t status = check_device(device);
    if (status != NVML_SUCCESS) return status;
    if (index == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *index = (unsigned int)(device - config.devices);
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minor) {
    nvmlReturn_t status = check_device(device);
    if (status != NVML_SUCCESS) return status;
    if (minor == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *minor = device->minor;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t device, unsigned int *mode) {
    nvmlReturn_t status = check_device(device);
    if (status != NVML_SUCCESS) return status;
    if (mode == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *mode = device->persistence ? 1u : 0u;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current, unsigned int *pending) {
    nvmlReturn_t status = check_device(device);
    if (status != NVML_SUCCESS) return status;
    if (current == NULL || pending == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (device->mig < 0) return NVML_ERROR_NOT_SUPPORTED;
    *current = *pending = device->mig ? 1u : 0u;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetNumaNodeId(nvmlDevice_t device, unsigned int *node) {
    nvmlReturn_t status = check_device(device);
    if (status != NVML_SUCCESS) return status;
    if (node == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (device->numa < 0) return NVML_ERROR_NOT_SUPPORTED;
    *node = (unsigned int)device->numa;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    nvmlReturn_t status = check_device(device);
    if (status != NVML_SUCCESS) return status;
    if (memory == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    memory->total = device->memory_mib << 20;
    memory->used = device->used_mib << 20;
    memory->free = memory->total - memory->used;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    nvmlReturn_t status = check_device(device);
    if (status != NVML_SUCCESS) return status;
    if (memory == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (memory->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    memory->total = device->memory_mib << 20;
    memory->reserved = 0;
    memory->used = device->used_mib << 20;
    memory->free = memory->total - memory->used;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci) {
    nvmlReturn_t status = check_device(device);
    if (status != NVML_SUCCESS) return status;
    if (pci == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    memset(pci, 0, sizeof(*pci));
    snprintf(pci->busId, sizeof(pci->busId), "%.31s", device->bus_id);
    /* The legacy field holds the short form: the last 12 characters ("0000:18:00.0"). */
    size_t len = strlen(device->bus_id);
    const char *legacy = len > 12 ? device->bus_id + len - 12 : device->bus_id;
    snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy), "%.15s", legacy);
    sscanf(device->bus_id, "%x:%x:%x", &pci->domain, &pci->bus, &pci->device);
    pci->pciDeviceId = device->pci_device_id;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t *pci) {
    return nvmlDeviceGetPciInfo_v3(device, pci);
}

EXPORT nvmlReturn_t nvmlDeviceGetAttributes_v2(nvmlDevice_t device, nvmlDeviceAttributes_t *attributes) {
    nvmlReturn_t status = check_device(device);
    if (status != NVML_SUCCESS) return status;
    if (attributes == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (device->sm_count == 0) return NVML_ERROR_NOT_SUPPORTED;
    memset(attributes, 0, sizeof(*attributes));
    attributes->multiprocessorCount = device->sm_count;
    attributes->memorySizeMB = device->memory_mib;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set) {
    nvmlReturn_t ready = check_ready();
    if (ready != NVML_SUCCESS) return ready;
    if (set == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *set = calloc(1, sizeof(struct nvmlEventSet_st));
    return *set == NULL ? NVML_ERROR_UNKNOWN : NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long types, nvmlEventSet_t set) {
    nvmlReturn_t status = check_device(device);
    if (status != NVML_SUCCESS) return status;
    if (set == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if ((types & ~(unsigned long long)nvmlEventTypeXidCriticalError) != 0) return NVML_ERROR_NOT_SUPPORTED;
    set->types[device - config.devices] |= types;
    return NVML_SUCCESS;
}

/* Deliver the first XID not yet delivered; the fake never blocks, it answers TIMEOUT at once. */
EXPORT nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeout_ms) {
    (void)timeout_ms;
    nvmlReturn_t ready = check_ready();
    if (ready != NVML_SUCCESS) return ready;
    if (set == NULL || data == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned int i = 0; i < config.count; i++) {
        struct nvmlDevice_st *dev = &config.devices[i];
        if ((set->types[i] & nvmlEventTypeXidCriticalError) && dev->xid != 0 && delivered_xid[i] != dev->xid) {
            delivered_xid[i] = dev->xid;
            memset(data, 0, sizeof(*data));
            data->device = dev;
            data->eventType = nvmlEventTypeXidCriticalError;
            data->eventData = dev->xid;
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_TIMEOUT;
}

EXPORT nvmlReturn_t nvmlEventSetWait(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeout_ms) {
    return nvmlEventSetWait_v2(set, data, timeout_ms);
}

EXPORT nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
    free(set);
    return NVML_SUCCESS;
}
