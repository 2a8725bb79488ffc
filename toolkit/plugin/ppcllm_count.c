/* ppcllm_count.c: a QEMU TCG plugin for `ppc-llm bench`, built by the toolkit with the host's gcc.
 *
 * Counts, per vCPU (a guest thread in user mode), the guest instructions executed and the bytes
 * loaded, and feeds every memory access through a simulated last-level cache (size, ways and line
 * from the target profile) to count the bytes the program must fetch from memory: the weight
 * stream, while activations that stay cached cost nothing. Writes its totals to the file named by
 * the `out=` argument when the program exits.
 *
 * Debian's QEMU 7.2 ships no plugin header, so the few API entries used are declared here, as in
 * QEMU's include/qemu/qemu-plugin.h (plugin API version 1). */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the QEMU plugin API (subset, version 1) ---- */
typedef uint64_t qemu_plugin_id_t;
typedef uint32_t qemu_plugin_meminfo_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_mem_cb_t)(unsigned int vcpu_index, qemu_plugin_meminfo_t info,
                                          uint64_t vaddr, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_mem_cb_t cb,
                                      enum qemu_plugin_cb_flags flags, enum qemu_plugin_mem_rw rw,
                                      void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
unsigned int qemu_plugin_mem_size_shift(qemu_plugin_meminfo_t info);
bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t info);
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

/* ---- counters ---- */
#define MAX_VCPUS 64

typedef struct {
    uint64_t insns;
    uint64_t loaded_bytes;
    uint64_t stored_bytes;
    char pad[40]; /* one cache line per vCPU */
} vcpu_counts;

static vcpu_counts counts[MAX_VCPUS];
static uint64_t cache_misses, cache_accesses;
static uint64_t line_bytes = 64, n_sets = 1024, n_ways = 8;
static uint64_t *tags, *stamps, clock_tick;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int many_vcpus; /* set once a second vCPU runs: from then on the cache is locked */
static char out_path[4096];

static void cache_touch(uint64_t line)
{
    uint64_t set = line % n_sets, *t = tags + set * n_ways, *s = stamps + set * n_ways;
    uint64_t w, victim = 0;
    clock_tick++;
    cache_accesses++;
    for (w = 0; w < n_ways; w++) {
        if (t[w] == line + 1) { /* +1: 0 marks an empty way */
            s[w] = clock_tick;
            return;
        }
        if (s[w] < s[victim]) {
            victim = w;
        }
    }
    cache_misses++;
    t[victim] = line + 1;
    s[victim] = clock_tick;
}

static void on_mem(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
    uint64_t size = 1ull << qemu_plugin_mem_size_shift(info);
    uint64_t first = vaddr / line_bytes, last = (vaddr + size - 1) / line_bytes;
    (void)udata;
    if (vcpu < MAX_VCPUS) {
        if (qemu_plugin_mem_is_store(info)) {
            counts[vcpu].stored_bytes += size;
        } else {
            counts[vcpu].loaded_bytes += size;
        }
    }
    if (vcpu > 0) {
        many_vcpus = 1;
    }
    if (many_vcpus) {
        pthread_mutex_lock(&cache_lock);
    }
    cache_touch(first);
    if (last != first) {
        cache_touch(last);
    }
    if (many_vcpus) {
        pthread_mutex_unlock(&cache_lock);
    }
}

static void on_tb_exec(unsigned int vcpu, void *udata)
{
    if (vcpu < MAX_VCPUS) {
        counts[vcpu].insns += (uint64_t)(uintptr_t)udata;
    }
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb), i;
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb_exec, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)n);
    for (i = 0; i < n; i++) {
        qemu_plugin_register_vcpu_mem_cb(qemu_plugin_tb_get_insn(tb, i), on_mem, QEMU_PLUGIN_CB_NO_REGS,
                                         QEMU_PLUGIN_MEM_RW, NULL);
    }
}

static void on_plugin_exit(qemu_plugin_id_t id, void *udata)
{
    FILE *f = fopen(out_path, "w");
    int v;
    (void)id;
    (void)udata;
    if (f == NULL) {
        return;
    }
    for (v = 0; v < MAX_VCPUS; v++) {
        if (counts[v].insns != 0) {
            fprintf(f, "vcpu %d insns %" PRIu64 " loaded %" PRIu64 " stored %" PRIu64 "\n", v, counts[v].insns,
                    counts[v].loaded_bytes, counts[v].stored_bytes);
        }
    }
    fprintf(f, "cache line %" PRIu64 " sets %" PRIu64 " ways %" PRIu64 " accesses %" PRIu64 " misses %" PRIu64 "\n",
            line_bytes, n_sets, n_ways, cache_accesses, cache_misses);
    fclose(f);
}

static int parse_arg(const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL) {
        return -1;
    }
    if (strncmp(arg, "out", (size_t)(eq - arg)) == 0) {
        snprintf(out_path, sizeof out_path, "%s", eq + 1);
    } else if (strncmp(arg, "cache_bytes", (size_t)(eq - arg)) == 0) {
        n_sets = strtoull(eq + 1, NULL, 10);
    } else if (strncmp(arg, "ways", (size_t)(eq - arg)) == 0) {
        n_ways = strtoull(eq + 1, NULL, 10);
    } else if (strncmp(arg, "line", (size_t)(eq - arg)) == 0) {
        line_bytes = strtoull(eq + 1, NULL, 10);
    } else {
        return -1;
    }
    return 0;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    int i;
    uint64_t cache_bytes;
    (void)info;
    n_sets = 0;
    for (i = 0; i < argc; i++) {
        if (parse_arg(argv[i]) != 0) {
            fprintf(stderr, "ppcllm_count: bad argument %s\n", argv[i]);
            return -1;
        }
    }
    cache_bytes = n_sets; /* parsed into n_sets above */
    if (out_path[0] == '\0' || cache_bytes == 0 || n_ways == 0 || line_bytes == 0) {
        fprintf(stderr, "ppcllm_count: needs out=PATH cache_bytes=N ways=N line=N\n");
        return -1;
    }
    n_sets = cache_bytes / (line_bytes * n_ways);
    tags = calloc(n_sets * n_ways, sizeof *tags);
    stamps = calloc(n_sets * n_ways, sizeof *stamps);
    if (n_sets == 0 || tags == NULL || stamps == NULL) {
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
    return 0;
}
