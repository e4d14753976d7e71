/*
 * A fake libdcmi.so that answers as Huawei's DCMI library does (same function names, argument order,
 * structure layouts and return codes: 0 on success, negative DCMI_ERR_CODE_* values on failure), so the
 * real Ascend discovery backend loads it through cffi and is tested without an NPU.
 *
 * Configuration: FAKE_DCMI_CONFIG names a text file of "key=value" lines; "[device]" starts a chip.
 * Global keys: dcmi_version, driver_version, init_error (returned by dcmi_init). Chip keys: card_id,
 * device_id, logic_id, phy_id, chip_type, chip_name, chip_ver, aicore_cnt, hbm_mib, hbm_used_mib,
 * memory_mib (DDR), health (0 normal .. 3 critical), share (device-share mode), share_error (an error
 * code for the share query, as on drivers that lack it), domain, bus, dev, func, vdie (five
 * unsigned ints), lost (1: the chip stops answering: health, memory and chip queries return
 * lost_error, default DCMI_ERR_CODE_TIME_OUT). The file is read again whenever it changes.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EXPORT __attribute__((visibility("default")))
#define MAX_CHIP_NAME_LEN 32
#define DIE_ID_COUNT 5
#define MAX_DEVICES 16
#define TEXT_LEN 64

#define DCMI_OK 0
#define DCMI_ERROR_CODE_BASE (-8000)
#define DCMI_ERR_CODE_INVALID_PARAMETER (DCMI_ERROR_CODE_BASE - 1)
#define DCMI_ERR_CODE_TIME_OUT (DCMI_ERROR_CODE_BASE - 6)
#define DCMI_ERR_CODE_INVALID_DEVICE_ID (DCMI_ERROR_CODE_BASE - 7)
#define DCMI_ERR_CODE_DEVICE_NOT_EXIST (DCMI_ERROR_CODE_BASE - 8)
#define DCMI_ERR_CODE_NOT_REDAY (DCMI_ERROR_CODE_BASE - 12)

struct dcmi_chip_info {
    unsigned char chip_type[MAX_CHIP_NAME_LEN];
    unsigned char chip_name[MAX_CHIP_NAME_LEN];
    unsigned char chip_ver[MAX_CHIP_NAME_LEN];
    unsigned int aicore_cnt;
};

struct dcmi_pcie_info_all {
    unsigned int venderid;
    unsigned int subvenderid;
    unsigned int deviceid;
    unsigned int subdeviceid;
    int domain;
    unsigned int bdf_busid;
    unsigned int bdf_deviceid;
    unsigned int bdf_funcid;
    unsigned char reserve[32];
};

struct dcmi_die_id {
    unsigned int soc_die[DIE_ID_COUNT];
};

struct dcmi_hbm_info {
    unsigned long long memory_size;
    unsigned int freq;
    unsigned long long memory_usage;
    int temp;
    unsigned int bandwith_util_rate;
};

struct dcmi_get_memory_info_stru {
    unsigned long long memory_size;
    unsigned long long memory_available;
    unsigned int freq;
    unsigned long hugepagesize;
    unsigned long hugepages_total;
    unsigned long hugepages_free;
    unsigned int utiliza;
    unsigned char reserve[60];
};

enum dcmi_die_type { NDIE, VDIE };

struct chip {
    int card_id, device_id, logic_id, phy_id;
    char chip_type[TEXT_LEN], chip_name[TEXT_LEN], chip_ver[TEXT_LEN];
    unsigned int aicore_cnt;
    unsigned long long hbm_mib, hbm_used_mib, memory_mib;
    unsigned int health;
    int share, share_error;
    int domain;
    unsigned int bus, dev, func;
    unsigned int vdie[DIE_ID_COUNT];
    int lost, lost_error;
};

static struct {
    char dcmi_version[TEXT_LEN];
    char driver_version[TEXT_LEN];
    int init_error;
    int count;
    struct chip chips[MAX_DEVICES];
} config;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int initialised;
static struct timespec loaded_mtime;
static off_t loaded_size = -1;
static char loaded_path[4096];

static void set_text(char *dest, const char *value) { snprintf(dest, TEXT_LEN, "%s", value); }

static void set_chip(struct chip *c, const char *key, const char *value) {
    static const char *const ints[] = {"card_id", "device_id", "logic_id", "phy_id", "share", "share_error",
                                       "domain", "lost", "lost_error"};
    int *const int_fields[] = {&c->card_id, &c->device_id, &c->logic_id, &c->phy_id, &c->share,
                               &c->share_error, &c->domain, &c->lost, &c->lost_error};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        if (strcmp(key, ints[i]) == 0) { *int_fields[i] = (int)strtol(value, NULL, 0); return; }
    }
    if (strcmp(key, "chip_type") == 0) set_text(c->chip_type, value);
    else if (strcmp(key, "chip_name") == 0) set_text(c->chip_name, value);
    else if (strcmp(key, "chip_ver") == 0) set_text(c->chip_ver, value);
    else if (strcmp(key, "aicore_cnt") == 0) c->aicore_cnt = (unsigned int)strtoul(value, NULL, 0);
    else if (strcmp(key, "hbm_mib") == 0) c->hbm_mib = strtoull(value, NULL, 0);
    else if (strcmp(key, "hbm_used_mib") == 0) c->hbm_used_mib = strtoull(value, NULL, 0);
    else if (strcmp(key, "memory_mib") == 0) c->memory_mib = strtoull(value, NULL, 0);
    else if (strcmp(key, "health") == 0) c->health = (unsigned int)strtoul(value, NULL, 0);
    else if (strcmp(key, "bus") == 0) c->bus = (unsigned int)strtoul(value, NULL, 0);
    else if (strcmp(key, "dev") == 0) c->dev = (unsigned int)strtoul(value, NULL, 0);
    else if (strcmp(key, "func") == 0) c->func = (unsigned int)strtoul(value, NULL, 0);
    else if (strcmp(key, "vdie") == 0) {
        sscanf(value, "%x %x %x %x %x", &c->vdie[0], &c->vdie[1], &c->vdie[2], &c->vdie[3], &c->vdie[4]);
    }
}

static void set_global(const char *key, const char *value) {
    if (strcmp(key, "dcmi_version") == 0) set_text(config.dcmi_version, value);
    else if (strcmp(key, "driver_version") == 0) set_text(config.driver_version, value);
    else if (strcmp(key, "init_error") == 0) config.init_error = atoi(value);
}

static void parse(FILE *file) {
    char line[256];
    struct chip *current = NULL;
    memset(&config, 0, sizeof(config));
    while (fgets(line, sizeof(line), file) != NULL) {
        size_t len = strlen(line);
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ')) line[--len] = 0;
        if (line[0] == '#' || line[0] == 0) continue;
        if (strcmp(line, "[device]") == 0) {
            current = config.count < MAX_DEVICES ? &config.chips[config.count++] : NULL;
            if (current != NULL) current->lost_error = DCMI_ERR_CODE_TIME_OUT;
            continue;
        }
        char *equals = strchr(line, '=');
        if (equals == NULL) continue;
        *equals = 0;
        if (current != NULL) set_chip(current, line, equals + 1);
        else set_global(line, equals + 1);
    }
}

static int refresh(void) {
    const char *path = getenv("FAKE_DCMI_CONFIG");
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

static int ready(void) {
    if (!initialised) return DCMI_ERR_CODE_NOT_REDAY;
    pthread_mutex_lock(&lock);
    refresh();
    pthread_mutex_unlock(&lock);
    return DCMI_OK;
}

/* Find a chip; with answering set, a lost chip yields its error instead. */
static int find_chip(int card_id, int device_id, int answering, struct chip **out) {
    int status = ready();
    if (status != DCMI_OK) return status;
    for (int i = 0; i < config.count; i++) {
        struct chip *c = &config.chips[i];
        if (c->card_id == card_id && c->device_id == device_id) {
            if (answering && c->lost) return c->lost_error;
            *out = c;
            return DCMI_OK;
        }
    }
    return DCMI_ERR_CODE_INVALID_DEVICE_ID;
}

EXPORT int dcmi_init(void) {
    pthread_mutex_lock(&lock);
    int result = DCMI_OK;
    if (refresh() != 0) result = DCMI_ERR_CODE_DEVICE_NOT_EXIST;
    else if (config.init_error != 0) result = config.init_error;
    else initialised = 1;
    pthread_mutex_unlock(&lock);
    return result;
}

static int copy_version(const char *value, char *dest, unsigned int len) {
    int status = ready();
    if (status != DCMI_OK) return status;
    if (dest == NULL || strlen(value) + 1 > len) return DCMI_ERR_CODE_INVALID_PARAMETER;
    memcpy(dest, value, strlen(value) + 1);
    return DCMI_OK;
}

EXPORT int dcmi_get_dcmi_version(char *dcmi_ver, unsigned int len) {
    return copy_version(config.dcmi_version, dcmi_ver, len);
}

EXPORT int dcmi_get_driver_version(char *driver_ver, unsigned int len) {
    return copy_version(config.driver_version, driver_ver, len);
}

EXPORT int dcmi_get_card_num_list(int *card_num, int *card_list, int list_len) {
    int status = ready();
    if (status != DCMI_OK) return status;
    if (card_num == NULL || card_list == NULL) return DCMI_ERR_CODE_INVALID_PARAMETER;
    int found = 0;
    for (int i = 0; i < config.count; i++) {
        int seen = 0;
        for (int j = 0; j < found; j++) seen |= card_list[j] == config.chips[i].card_id;
        if (!seen) {
            if (found >= list_len) return DCMI_ERR_CODE_INVALID_PARAMETER;
            card_list[found++] = config.chips[i].card_id;
        }
    }
    *card_num = found;
    return DCMI_OK;
}

EXPORT int dcmi_get_card_list(int *card_num, int *card_list, int list_len) {
    return dcmi_get_card_num_list(card_num, card_list, list_len);
}

EXPORT int dcmi_get_device_num_in_card(int card_id, int *device_num) {
    int status = ready();
    if (status != DCMI_OK) return status;
    if (device_num == NULL) return DCMI_ERR_CODE_INVALID_PARAMETER;
    int found = 0;
    for (int i = 0; i < config.count; i++) found += config.chips[i].card_id == card_id;
    if (found == 0) return DCMI_ERR_CODE_INVALID_DEVICE_ID;
    *device_num = found;
    return DCMI_OK;
}

EXPORT int dcmi_get_device_logic_id(int *device_logic_id, int card_id, int device_id) {
    struct chip *c = NULL;
    int status = find_chip(card_id, device_id, 0, &c);
    if (status != DCMI_OK) return status;
    if (device_logic_id == NULL) return DCMI_ERR_CODE_INVALID_PARAMETER;
    *device_logic_id = c->logic_id;
    return DCMI_OK;
}

EXPORT int dcmi_get_device_phyid_from_logicid(unsigned int logicid, unsigned int *phyid) {
    int status = ready();
    if (status != DCMI_OK) return status;
    if (phyid == NULL) return DCMI_ERR_CODE_INVALID_PARAMETER;
    for (int i = 0; i < config.count; i++) {
        if ((unsigned int)config.chips[i].logic_id == logicid) {
            *phyid = (unsigned int)config.chips[i].phy_id;
            return DCMI_OK;
        }
    }
    return DCMI_ERR_CODE_INVALID_DEVICE_ID;
}

EXPORT int dcmi_get_device_chip_info(int card_id, int device_id, struct dcmi_chip_info *chip_info) {
    struct chip *c = NULL;
    int status = find_chip(card_id, device_id, 1, &c);
    if (status != DCMI_OK) return status;
    if (chip_info == NULL) return DCMI_ERR_CODE_INVALID_PARAMETER;
    memset(chip_info, 0, sizeof(*chip_info));
    snprintf((char *)chip_info->chip_type, MAX_CHIP_NAME_LEN, "%.31s", c->chip_type);
    snprintf((char *)chip_info->chip_name, MAX_CHIP_NAME_LEN, "%.31s", c->chip_name);
    snprintf((char *)chip_info->chip_ver, MAX_CHIP_NAME_LEN, "%.31s", c->chip_ver);
    chip_info->aicore_cnt = c->aicore_cnt;
    return DCMI_OK;
}

EXPORT int dcmi_get_device_hbm_info(int card_id, int device_id, struct dcmi_hbm_info *hbm_info) {
    struct chip *c = NULL;
    int status = find_chip(card_id, device_id, 1, &c);
    if (status != DCMI_OK) return status;
    if (hbm_info == NULL) return DCMI_ERR_CODE_INVALID_PARAMETER;
    memset(hbm_info, 0, sizeof(*hbm_info));
    hbm_info->memory_size = c->hbm_mib;
    hbm_info->memory_usage = c->hbm_used_mib;
    hbm_info->freq = 1600;
    hbm_info->temp = 40;
    return DCMI_OK;
}

EXPORT int dcmi_get_device_memory_info_v3(int card_id, int device_id, struct dcmi_get_memory_info_stru *info) {
    struct chip *c = NULL;
    int status = find_chip(card_id, device_id, 1, &c);
    if (status != DCMI_OK) return status;
    if (info == NULL) return DCMI_ERR_CODE_INVALID_PARAMETER;
    memset(info, 0, sizeof(*info));
    info->memory_size = c->memory_mib;
    info->memory_available = c->memory_mib;
    info->hugepagesize = 2048;
    return DCMI_OK;
}

EXPORT int dcmi_get_device_health(int card_id, int device_id, unsigned int *health) {
    struct chip *c = NULL;
    int status = find_chip(card_id, device_id, 1, &c);
    if (status != DCMI_OK) return status;
    if (health == NULL) return DCMI_ERR_CODE_INVALID_PARAMETER;
    *health = c->health;
    return DCMI_OK;
}

EXPORT int dcmi_get_device_pcie_info_v2(int card_id, int device_id, struct dcmi_pcie_info_all *pcie_info) {
    struct chip *c = NULL;
    int status = find_chip(card_id, device_id, 1, &c);
    if (status != DCMI_OK) return status;
    if (pcie_info == NULL) return DCMI_ERR_CODE_INVALID_PARAMETER;
    memset(pcie_info, 0, sizeof(*pcie_info));
    pcie_info->venderid = 0x19e5;
    pcie_info->deviceid = 0xd802;
    pcie_info->domain = c->domain;
    pcie_info->bdf_busid = c->bus;
    pcie_info->bdf_deviceid = c->dev;
    pcie_info->bdf_funcid = c->func;
    return DCMI_OK;
}

EXPORT int dcmi_get_device_die_v2(int card_id, int device_id, enum dcmi_die_type input_type,
                                  struct dcmi_die_id *die_id) {
    struct chip *c = NULL;
    int status = find_chip(card_id, device_id, 1, &c);
    if (status != DCMI_OK) return status;
    if (die_id == NULL || (input_type != NDIE && input_type != VDIE)) return DCMI_ERR_CODE_INVALID_PARAMETER;
    for (int i = 0; i < DIE_ID_COUNT; i++) die_id->soc_die[i] = input_type == VDIE ? c->vdie[i] : ~c->vdie[i];
    return DCMI_OK;
}

EXPORT int dcmi_get_device_share_enable(int card_id, int device_id, int *enable_flag) {
    struct chip *c = NULL;
    int status = find_chip(card_id, device_id, 1, &c);
    if (status != DCMI_OK) return status;
    if (enable_flag == NULL) return DCMI_ERR_CODE_INVALID_PARAMETER;
    if (c->share_error != 0) return c->share_error;
    *enable_flag = c->share;
    return DCMI_OK;
}
