/* guest_init.c: /init of the initramfs that ppc-llm boots under full-system QEMU.
 *
 * It mounts proc, sys and devtmpfs, makes memory commitment strict (vm.overcommit_memory=2,
 * overcommit_ratio=100, no swap: a program can commit at most the machine's RAM, so an allocation
 * too large for the target fails in the program, which reports it, instead of the kernel's OOM
 * killer ending it later), runs the inference program with the arguments in
 * /ppcllm/argv (NUL-separated), sends the program's stdout to a channel of its own (the device
 * named in /ppcllm/channel, a second serial port set to raw mode, so every byte arrives as the
 * program wrote it), leaves its stderr on the console, then reports on the console
 *
 *   ppcllm-init: result exit=N signal=S maxrss_kib=K wall_ms=W mem_total_kib=M boot_ms=B
 *
 * (peak memory from wait4's ru_maxrss: /proc is gone once the program exits; boot_ms is
 * CLOCK_MONOTONIC when the program started, the time since the kernel started) and powers the
 * machine off. The host reads the report, so every failure here is reported the same way.
 * C99 + POSIX, static, built with the target's compiler. */
#define _DEFAULT_SOURCE
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MARK "ppcllm-init: "
#define MAX_ARGS 64
#define MAX_ARGV_BYTES 65536

static void say(const char *what, const char *detail)
{
    fprintf(stderr, "\n" MARK "%s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    fflush(stderr);
}

static void power_off(void)
{
    sync();
    reboot(RB_POWER_OFF);
    say("error", "power-off failed"); /* init exits: the kernel panics, the host sees it */
}

static long read_file(const char *path, char *buf, size_t cap)
{
    size_t n = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        return -1;
    }
    while (n < cap) {
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break;
        }
        n += (size_t)got;
    }
    close(fd);
    return n < cap ? (long)n : -1;
}

static int write_file(const char *path, const char *text)
{
    size_t len = strlen(text);
    int fd = open(path, O_WRONLY);
    int ok = fd >= 0 && write(fd, text, len) == (ssize_t)len;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

static long mem_total_kib(void)
{
    char buf[4096];
    long n = read_file("/proc/meminfo", buf, sizeof buf - 1);
    const char *p;
    if (n < 0) {
        return -1;
    }
    buf[n] = '\0';
    p = strstr(buf, "MemTotal:");
    return p ? strtol(p + 9, NULL, 10) : -1;
}

static int open_channel(const char *path)
{
    struct termios tio;
    int fd = open(path, O_RDWR | O_NOCTTY);
    if (fd < 0) {
        return -1;
    }
    if (tcgetattr(fd, &tio) == 0) {
        cfmakeraw(&tio);
        tcsetattr(fd, TCSANOW, &tio);
    }
    return fd;
}

static long elapsed_ms(const struct timespec *a, const struct timespec *b)
{
    return (long)(b->tv_sec - a->tv_sec) * 1000L + (long)((b->tv_nsec - a->tv_nsec) / 1000000L);
}

int main(void)
{
    static char args[MAX_ARGV_BYTES];
    char channel[256];
    char *argv[MAX_ARGS + 1];
    int argc = 0, fd, status = 0;
    long n, i, start;
    pid_t pid;
    struct rusage ru;
    struct timespec t0, t1;

    mount("proc", "/proc", "proc", 0, NULL);
    mount("sysfs", "/sys", "sysfs", 0, NULL);
    mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
    if (!write_file("/proc/sys/vm/overcommit_ratio", "100\n") ||
        !write_file("/proc/sys/vm/overcommit_memory", "2\n")) {
        say("error", "cannot make memory commitment strict (/proc/sys/vm)");
        power_off();
        return 1;
    }

    n = read_file("/ppcllm/channel", channel, sizeof channel - 1);
    if (n <= 0) {
        say("error", "cannot read /ppcllm/channel");
        power_off();
        return 1;
    }
    channel[n] = '\0';
    channel[strcspn(channel, "\n")] = '\0';
    n = read_file("/ppcllm/argv", args, sizeof args);
    for (i = 0, start = 0; n > 0 && i < n && argc < MAX_ARGS; i++) {
        if (args[i] == '\0') {
            argv[argc++] = args + start;
            start = i + 1;
        }
    }
    argv[argc] = NULL;
    if (argc == 0) {
        say("error", "cannot read /ppcllm/argv");
        power_off();
        return 1;
    }
    fd = open_channel(channel);
    if (fd < 0) {
        say("error", strerror(errno));
        say("error", channel);
        power_off();
        return 1;
    }

    say("start", argv[0]);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid = fork();
    if (pid == 0) {
        dup2(fd, STDOUT_FILENO);
        close(fd);
        execv(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (pid < 0) {
        say("error", strerror(errno));
        power_off();
        return 1;
    }
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    tcdrain(fd);
    fprintf(stderr,
            "\n" MARK "result exit=%d signal=%d maxrss_kib=%ld wall_ms=%ld mem_total_kib=%ld boot_ms=%ld\n",
            WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status) ? WTERMSIG(status) : 0,
            (long)ru.ru_maxrss, elapsed_ms(&t0, &t1), mem_total_kib(),
            (long)t0.tv_sec * 1000L + (long)(t0.tv_nsec / 1000000L));
    fflush(stderr);
    power_off();
    return 0;
}
