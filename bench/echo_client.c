/*
 * echo_client: the load generator of bench/echo.py.
 *
 *     echo_client --transport tcp --addr 127.0.0.1:8888 \
 *                 [-c CONNS] [-s SIZE] [-d SECONDS] [-w SECONDS] [-p PROCS] [-t SECONDS]
 *
 * Opens CONNS connections (default 10; TCP_NODELAY on TCP). On each, one
 * request at a time: send a message of SIZE bytes (default 1024), wait until
 * all SIZE bytes have come back, check them, record the latency (from the
 * first send() to the recv() that completed it, CLOCK_MONOTONIC), and send
 * the next one. Sending and receiving overlap: a large message is echoed
 * while it is still being sent, and the client keeps reading meanwhile, or a
 * server that stops reading while its writes are blocked would deadlock.
 *
 * The first -w seconds (default 1) are a warm-up; the requests completed in
 * the following -d seconds (default 3) are counted. Prints one JSON line:
 *
 *   {"requests", "seconds", "rps", "p50_us", "p90_us", "p99_us", "max_us",
 *    "mean_us", "bytes", "connections", "size", "procs", "client_cpu",
 *    "conn_min", "conn_max"}
 *
 * "bytes" counts the echoed bytes received in the window (requests * size);
 * "client_cpu" is the CPU time (user + system) the client used during the
 * window divided by its length, summed over processes: near 1.0 per process
 * means the client, not the server, may be the bottleneck. "conn_min" and
 * "conn_max" are the fewest and the most requests one connection completed
 * in the window: far apart, the server served its connections unfairly.
 *
 * Every echoed byte is compared with what was sent: each connection sends
 * its own pseudo-random bytes, and each request is stamped with the
 * connection and request number in its first and last 8 bytes, so a server
 * that drops, duplicates, reorders or mixes up data fails instead of looking
 * fast. Any error (mismatch, connection closed or reset, no progress for -t
 * seconds, default 10) is reported on stderr with exit status 2.
 *
 * With --churn every request is made on a new connection: connect, send,
 * wait for the echo, close, and connect again (the latency then includes
 * connect()). "requests" then counts connections, and the run measures what
 * a server pays to accept, set up and tear down a connection.
 *
 * With -p PROCS > 1 the connections are split over PROCS forked processes
 * that share the same time window; the parent merges their latencies.
 *
 * Build: gcc -O2 -Wall -Wextra -o echo_client echo_client.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RECV_CHUNK (256 * 1024)
#define MAX_EVENTS 64

struct options {
    int tcp;
    const char *addr;
    int conns;
    size_t size;
    double duration, warmup, stall;
    int procs;
    int churn;           /* a new connection for every request */
};

struct conn {
    int fd;
    unsigned id;
    unsigned char *msg;  /* the request in flight; the echo must equal it */
    size_t sent, got;
    uint64_t seq;
    uint64_t t0;         /* ns, when the request's first send() started */
    uint64_t counted;    /* requests completed in the window */
    int want_out;        /* EPOLLOUT is in the interest set */
    int done;            /* no more requests: the window is over */
};

/* What one process measured. */
struct result {
    uint64_t requests;
    uint64_t cpu_ns;
    uint64_t conn_min, conn_max; /* fewest and most requests on one connection */
    uint64_t *lat;       /* latencies in ns, `requests` of them */
    size_t cap;
};

static const char *prog = "echo_client";

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
}

/* ------------------------------------------------------------------ */
/* Connecting                                                          */
/* ------------------------------------------------------------------ */

static int connect_tcp(const char *addr)
{
    char host[256], port[32];
    const char *colon = strrchr(addr, ':');
    struct addrinfo hints, *res, *ai;
    size_t n;
    int fd = -1, one = 1, rc, err = 0;

    if (!colon || colon == addr || colon[1] == '\0')
        fail("bad TCP address %s (want HOST:PORT)", addr);
    n = (size_t)(colon - addr);
    if (addr[0] == '[' && n >= 2 && addr[n - 1] == ']') {
        addr++;
        n -= 2;
    }
    if (n >= sizeof host || strlen(colon + 1) >= sizeof port)
        fail("TCP address too long");
    memcpy(host, addr, n);
    host[n] = '\0';
    strcpy(port, colon + 1);

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        fail("%s: %s", addr, gai_strerror(rc));
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        fail("connect to %s: %s", addr, strerror(err));
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        fail("TCP_NODELAY: %s", strerror(errno));
    return fd;
}

static int connect_unix(const char *path)
{
    struct sockaddr_un sa;
    int fd;

    if (strlen(path) >= sizeof sa.sun_path)
        fail("unix socket path too long: %s", path);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail("socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        fail("connect to %s: %s", path, strerror(errno));
    return fd;
}

/* A new non-blocking connection for slot c, watched for input. */
static void open_conn(const struct options *o, int ep, struct conn *c)
{
    struct epoll_event ev;
    int fd = o->tcp ? connect_tcp(o->addr) : connect_unix(o->addr);
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
        fail("O_NONBLOCK: %s", strerror(errno));
    c->fd = fd;
    c->want_out = 0;
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        fail("epoll_ctl(ADD): %s", strerror(errno));
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void fill_random(unsigned char *buf, size_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    size_t i;
    for (i = 0; i < n; i += 8) {
        uint64_t r = xorshift64(&s);
        size_t k = n - i < 8 ? n - i : 8;
        memcpy(buf + i, &r, k);
    }
}

/* Stamp the connection id and request number into the message. */
static void stamp(struct conn *c, size_t size)
{
    uint64_t tag = ((uint64_t)c->id << 40) ^ c->seq ^ 0x5A5A000000000000ull;
    size_t k = size < 8 ? size : 8;
    memcpy(c->msg, &tag, k);
    if (size >= 16)
        memcpy(c->msg + size - 8, &tag, 8);
}

static void set_out(int ep, struct conn *c, int want)
{
    struct epoll_event ev;
    if (c->want_out == want)
        return;
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0);
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        fail("epoll_ctl(MOD): %s", strerror(errno));
    c->want_out = want;
}

static void try_send(int ep, struct conn *c, size_t size)
{
    while (c->sent < size) {
        ssize_t n = send(c->fd, c->msg + c->sent, size - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_out(ep, c, 1);
            return;
        } else {
            fail("connection %u: send: %s", c->id, n < 0 ? strerror(errno) : "returned 0");
        }
    }
    set_out(ep, c, 0);
}

static void start_request(int ep, struct conn *c, size_t size)
{
    stamp(c, size);
    c->sent = c->got = 0;
    c->t0 = now_ns();
    try_send(ep, c, size);
}

static void record(struct result *r, uint64_t ns)
{
    if (r->requests == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 65536;
        r->lat = realloc(r->lat, r->cap * sizeof *r->lat);
        if (!r->lat)
            fail("out of memory for %zu latencies", r->cap);
    }
    r->lat[r->requests++] = ns;
}

/* ------------------------------------------------------------------ */
/* One process's run                                                   */
/* ------------------------------------------------------------------ */

/*
 * Runs `nconns` connections (ids first_id...) until t_end; counts the
 * requests completed in [t_warm, t_end).
 */
static void run(const struct options *o, unsigned first_id, int nconns, uint64_t t_warm,
                uint64_t t_end, struct result *res)
{
    struct epoll_event events[MAX_EVENTS];
    struct conn *conns = calloc((size_t)nconns, sizeof *conns);
    unsigned char *rbuf = malloc(RECV_CHUNK);
    uint64_t stall_ns = (uint64_t)(o->stall * 1e9), last_progress, cpu_at_warm = 0;
    int ep = epoll_create1(EPOLL_CLOEXEC), i, warm = 0;

    if (!conns || !rbuf || ep < 0)
        fail("setup: %s", strerror(errno));
    memset(res, 0, sizeof *res);

    for (i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        open_conn(o, ep, c);
        c->id = first_id + (unsigned)i;
        c->msg = malloc(o->size);
        if (!c->msg)
            fail("out of memory for a %zu-byte message", o->size);
        fill_random(c->msg, o->size, c->id + 1);
    }
    for (i = 0; i < nconns; i++)
        start_request(ep, &conns[i], o->size);

    last_progress = now_ns();
    for (;;) {
        uint64_t now = now_ns();
        int n, timeout_ms;

        if (!warm && now >= t_warm) {
            warm = 1;
            cpu_at_warm = cpu_ns();
        }
        if (now >= t_end)
            break;
        if (now - last_progress > stall_ns)
            fail("no data from the server for %.1f s (%llu requests done in the window)",
                 o->stall, (unsigned long long)res->requests);
        timeout_ms = (int)(((warm ? t_end : t_warm) - now) / 1000000u) + 1;
        if (timeout_ms > 100)
            timeout_ms = 100;
        n = epoll_wait(ep, events, MAX_EVENTS, timeout_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail("epoll_wait: %s", strerror(errno));
        }
        for (i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            unsigned ev = events[i].events;
            if (c->done)
                continue;
            if ((ev & EPOLLOUT) && c->sent < o->size)
                try_send(ep, c, o->size);
            if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            {
                size_t want = o->size - c->got;
                ssize_t got;
                if (want > RECV_CHUNK)
                    want = RECV_CHUNK;
                got = recv(c->fd, rbuf, want, 0);
                if (got == 0)
                    fail("connection %u: closed by the server after %zu of %zu bytes "
                         "of request %llu", c->id, c->got, o->size,
                         (unsigned long long)c->seq);
                if (got < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                        continue;
                    fail("connection %u: recv: %s", c->id, strerror(errno));
                }
                if ((size_t)got > c->sent - c->got)
                    fail("connection %u: got %zu bytes back, only %zu were sent", c->id,
                         c->got + (size_t)got, c->sent);
                if (memcmp(rbuf, c->msg + c->got, (size_t)got) != 0) {
                    size_t k = 0;
                    while (rbuf[k] == c->msg[c->got + k])
                        k++;
                    fail("connection %u: echo differs from what was sent at byte %zu "
                         "of request %llu (size %zu)", c->id, c->got + k,
                         (unsigned long long)c->seq, o->size);
                }
                c->got += (size_t)got;
                last_progress = now_ns();
                if (c->got == o->size) {
                    uint64_t t = last_progress;
                    if (t >= t_warm && t < t_end) {
                        record(res, t - c->t0);
                        c->counted++;
                    }
                    c->seq++;
                    if (t >= t_end) {
                        c->done = 1;
                    } else if (o->churn) {
                        uint64_t t0 = now_ns();
                        close(c->fd);
                        open_conn(o, ep, c);
                        start_request(ep, c, o->size);
                        c->t0 = t0; /* the latency includes connect() */
                    } else {
                        start_request(ep, c, o->size);
                    }
                }
            }
        }
    }
    res->cpu_ns = warm ? cpu_ns() - cpu_at_warm : 0;
    res->conn_min = UINT64_MAX;
    for (i = 0; i < nconns; i++) {
        if (conns[i].counted < res->conn_min)
            res->conn_min = conns[i].counted;
        if (conns[i].counted > res->conn_max)
            res->conn_max = conns[i].counted;
        close(conns[i].fd);
        free(conns[i].msg);
    }
    free(conns);
    free(rbuf);
    close(ep);
}

/* ------------------------------------------------------------------ */
/* Processes, merging, report                                          */
/* ------------------------------------------------------------------ */

static void write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            fail("writing results to the parent: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

/* 0 on success, -1 on a short read (the child died). */
static int read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values, in microseconds. */
static double pct_us(const uint64_t *sorted, uint64_t n, double p)
{
    uint64_t rank;
    if (n == 0)
        return 0.0;
    rank = (uint64_t)(p / 100.0 * (double)n + 0.999999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted[rank - 1] / 1000.0;
}

static double parse_seconds(const char *s, const char *what)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !(v >= 0.0) || v > 1e6)
        fail("bad %s: %s", what, s);
    return v;
}

static long parse_int(const char *s, const char *what, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi)
        fail("bad %s: %s (want %ld..%ld)", what, s, lo, hi);
    return v;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: echo_client --transport tcp|unix --addr HOST:PORT|PATH\n"
            "                   [-c CONNS] [-s SIZE] [-d SECONDS] [-w SECONDS] [-p PROCS]\n"
            "                   [-t STALL_SECONDS] [--churn]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"transport", required_argument, NULL, 'T'},
        {"addr", required_argument, NULL, 'a'},
        {"connections", required_argument, NULL, 'c'},
        {"size", required_argument, NULL, 's'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"procs", required_argument, NULL, 'p'},
        {"stall-timeout", required_argument, NULL, 't'},
        {"churn", no_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    struct options o = {1, NULL, 10, 1024, 3.0, 1.0, 10.0, 1, 0};
    struct result total;
    uint64_t t_start, t_warm, t_end, i;
    double seconds, sum_us = 0.0;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:s:d:w:p:t:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'T':
            if (strcmp(optarg, "tcp") == 0)
                o.tcp = 1;
            else if (strcmp(optarg, "unix") == 0)
                o.tcp = 0;
            else
                usage();
            break;
        case 'a': o.addr = optarg; break;
        case 'c': o.conns = (int)parse_int(optarg, "connection count", 1, 100000); break;
        case 's': o.size = (size_t)parse_int(optarg, "size", 1, 1L << 30); break;
        case 'd': o.duration = parse_seconds(optarg, "duration"); break;
        case 'w': o.warmup = parse_seconds(optarg, "warm-up"); break;
        case 'p': o.procs = (int)parse_int(optarg, "process count", 1, 256); break;
        case 't': o.stall = parse_seconds(optarg, "stall timeout"); break;
        case 'C': o.churn = 1; break;
        default: usage();
        }
    }
    if (!o.addr || optind != argc || o.duration <= 0.0)
        usage();
    if (o.procs > o.conns)
        o.procs = o.conns;
    signal(SIGPIPE, SIG_IGN);

    /* One window for every process; connecting happens in the warm-up. */
    t_start = now_ns();
    t_warm = t_start + (uint64_t)(o.warmup * 1e9);
    t_end = t_warm + (uint64_t)(o.duration * 1e9);
    seconds = (double)(t_end - t_warm) / 1e9;
    memset(&total, 0, sizeof total);

    if (o.procs == 1) {
        run(&o, 0, o.conns, t_warm, t_end, &total);
    } else {
        pid_t *pids = calloc((size_t)o.procs, sizeof *pids);
        int *fds = calloc((size_t)o.procs, sizeof *fds);
        int p, first = 0, failed = 0;
        if (!pids || !fds)
            fail("out of memory");
        for (p = 0; p < o.procs; p++) {
            int share = o.conns / o.procs + (p < o.conns % o.procs);
            int pipefd[2];
            if (pipe(pipefd) != 0)
                fail("pipe: %s", strerror(errno));
            fflush(NULL);
            pids[p] = fork();
            if (pids[p] < 0)
                fail("fork: %s", strerror(errno));
            if (pids[p] == 0) {
                struct result r;
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                close(pipefd[0]);
                run(&o, (unsigned)first, share, t_warm, t_end, &r);
                write_all(pipefd[1], &r.requests, sizeof r.requests);
                write_all(pipefd[1], &r.cpu_ns, sizeof r.cpu_ns);
                write_all(pipefd[1], &r.conn_min, sizeof r.conn_min);
                write_all(pipefd[1], &r.conn_max, sizeof r.conn_max);
                write_all(pipefd[1], r.lat, r.requests * sizeof *r.lat);
                _exit(0);
            }
            close(pipefd[1]);
            fds[p] = pipefd[0];
            first += share;
        }
        for (p = 0; p < o.procs && !failed; p++) {
            uint64_t n, cpu, cmin, cmax;
            if (read_all(fds[p], &n, sizeof n) != 0 || read_all(fds[p], &cpu, sizeof cpu) != 0 ||
                read_all(fds[p], &cmin, sizeof cmin) != 0 ||
                read_all(fds[p], &cmax, sizeof cmax) != 0) {
                failed = 1;
                break;
            }
            total.cap = total.requests + n;
            total.lat = realloc(total.lat, (total.cap ? total.cap : 1) * sizeof *total.lat);
            if (!total.lat)
                fail("out of memory");
            if (read_all(fds[p], total.lat + total.requests, n * sizeof *total.lat) != 0) {
                failed = 1;
                break;
            }
            total.requests += n;
            total.cpu_ns += cpu;
            if (p == 0 || cmin < total.conn_min)
                total.conn_min = cmin;
            if (cmax > total.conn_max)
                total.conn_max = cmax;
        }
        for (p = 0; p < o.procs; p++) {
            int status;
            if (failed)
                kill(pids[p], SIGKILL);
            if (waitpid(pids[p], &status, 0) == pids[p] &&
                !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                failed = 1;
            close(fds[p]);
        }
        if (failed)
            fail("a client process failed (see above)");
        free(pids);
        free(fds);
    }

    qsort(total.lat, total.requests, sizeof *total.lat, cmp_u64);
    for (i = 0; i < total.requests; i++)
        sum_us += (double)total.lat[i] / 1000.0;
    printf("{\"requests\": %llu, \"seconds\": %.6f, \"rps\": %.1f, "
           "\"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, "
           "\"mean_us\": %.1f, \"bytes\": %llu, \"connections\": %d, \"size\": %zu, "
           "\"procs\": %d, \"client_cpu\": %.3f, \"conn_min\": %llu, \"conn_max\": %llu, "
           "\"churn\": %d}\n",
           (unsigned long long)total.requests, seconds, (double)total.requests / seconds,
           pct_us(total.lat, total.requests, 50), pct_us(total.lat, total.requests, 90),
           pct_us(total.lat, total.requests, 99), pct_us(total.lat, total.requests, 100),
           total.requests ? sum_us / (double)total.requests : 0.0,
           (unsigned long long)(total.requests * o.size), o.conns, o.size, o.procs,
           (double)total.cpu_ns / 1e9 / seconds, (unsigned long long)total.conn_min,
           (unsigned long long)total.conn_max, o.churn);
    free(total.lat);
    return total.requests ? 0 : 3;
}
