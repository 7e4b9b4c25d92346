/*
 * pipe_reader.c - the pipe_read workload without Python: a child runs
 * `head -c BYTES /dev/zero` into a pipe, and this process reads it the way
 * an event loop does (epoll_wait() until readable, one read() of up to
 * 256 KiB, the chunk copied twice as a StreamReader copies it: into its
 * buffer and out again), then spends COST_US microseconds before the next
 * read, standing in for the Python a loop runs per chunk (feed_data(), the
 * waiter, the task step, read()). bench/pipe_ceiling.py runs it beside the
 * Python loops: it shows what any loop could reach with a given cost per
 * chunk on this machine.
 *
 * Usage: pipe_reader COST_US [BYTES]
 * Prints: {"value": SECONDS, "reads": N} (bench/workloads.py's key)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

static double
now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s COST_US [BYTES]\n", argv[0]);
        return 2;
    }
    double cost = atof(argv[1]) * 1e-6;
    const char *bytes = argc > 2 ? argv[2] : "268435456";
    char *buf = aligned_alloc(4096, CHUNK);
    char *kept = malloc(CHUNK);
    char *out = malloc(CHUNK);
    int fds[2];
    if (buf == NULL || kept == NULL || out == NULL || pipe2(fds, O_CLOEXEC) < 0) {
        perror("setup");
        return 1;
    }
    double t0 = now();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        execlp("head", "head", "-c", bytes, "/dev/zero", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev);
    long long total = 0, reads = 0;
    for (;;) {
        if (epoll_wait(ep, &ev, 1, -1) < 0) {
            continue;
        }
        ssize_t n = read(fds[0], buf, CHUNK);
        if (n == 0) {
            break;
        }
        if (n < 0) {
            continue;
        }
        total += n;
        reads++;
        memcpy(kept, buf, (size_t)n);
        memcpy(out, kept, (size_t)n);
        for (double start = now(); now() - start < cost;) {
        }
    }
    int status;
    waitpid(pid, &status, 0);
    double elapsed = now() - t0;
    if (total != atoll(bytes)) {
        fprintf(stderr, "read %lld bytes, expected %s\n", total, bytes);
        return 1;
    }
    printf("{\"value\": %.6f, \"reads\": %lld}\n", elapsed, reads);
    return 0;
}
