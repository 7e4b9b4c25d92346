/*
 * echo_c_server: a minimal single-threaded epoll echo server, the reference
 * point ("c-epoll") of bench/echo.py.
 *
 *     echo_c_server --transport tcp --addr 127.0.0.1:8888
 *     echo_c_server --transport unix --addr /tmp/echo.sock
 *
 * Prints "READY" on stdout once listening; runs until SIGTERM or SIGINT.
 *
 * It does what the Python servers do and nothing more, as cheaply as the
 * kernel allows: level-triggered epoll, one recv() of up to 256 KiB (what
 * asyncio and uvloop transports read at once) per readiness event into one
 * buffer shared by all connections (cache-hot), and a send() of what was
 * read straight back. When the socket does not take it all, the rest is
 * copied to a buffer of the connection's own, the connection waits for
 * EPOLLOUT instead of EPOLLIN (so a client that does not read cannot make
 * the server buffer without bound), and reading resumes once that buffer is
 * flushed. TCP connections get TCP_NODELAY, as asyncio's do.
 *
 * Build: gcc -O2 -Wall -Wextra -o echo_c_server echo_c_server.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)
#define MAX_EVENTS 64

struct conn {
    int fd;
    unsigned char *pending;     /* NULL, or malloc'ed bytes not sent yet: [off:len] */
    size_t off, len;
};

static unsigned char rbuf[BUF_SIZE];

static volatile sig_atomic_t stop_requested;

static void on_signal(int signo)
{
    (void)signo;
    stop_requested = 1;
}

static void die(const char *what)
{
    fprintf(stderr, "echo_c_server: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Split "HOST:PORT" (HOST may be "[v6]") into its parts; 0 on success. */
static int split_host_port(const char *addr, char *host, size_t hostlen, char *port,
                           size_t portlen)
{
    const char *colon = strrchr(addr, ':');
    size_t n;
    if (!colon || colon == addr || colon[1] == '\0')
        return -1;
    n = (size_t)(colon - addr);
    if (addr[0] == '[' && n >= 2 && addr[n - 1] == ']') {
        addr++;
        n -= 2;
    }
    if (n >= hostlen || strlen(colon + 1) >= portlen)
        return -1;
    memcpy(host, addr, n);
    host[n] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

static int listen_tcp(const char *addr)
{
    char host[256], port[32];
    struct addrinfo hints, *res, *ai;
    int fd = -1, one = 1, rc;

    if (split_host_port(addr, host, sizeof host, port, sizeof port) != 0) {
        fprintf(stderr, "echo_c_server: bad TCP address %s (want HOST:PORT)\n", addr);
        exit(2);
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "echo_c_server: %s: %s\n", addr, gai_strerror(rc));
        exit(2);
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        die(addr);
    return fd;
}

static int listen_unix(const char *path)
{
    struct sockaddr_un sa;
    int fd;

    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "echo_c_server: unix socket path too long: %s\n", path);
        exit(2);
    }
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    unlink(path); /* a stale socket file from an earlier run */
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die(path);
    return fd;
}

static void set_events(int ep, struct conn *c, unsigned events)
{
    struct epoll_event ev;
    ev.events = events;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        die("epoll_ctl(MOD)");
}

static void close_conn(struct conn *c)
{
    close(c->fd); /* also removes it from the epoll set */
    free(c->pending);
    free(c);
}

static void accept_all(int ep, int lfd, int tcp)
{
    for (;;) {
        struct epoll_event ev;
        struct conn *c;
        int one = 1;
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            if (errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
                return; /* the client gave up, or we are out of fds: try later */
            die("accept4");
        }
        if (tcp)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->pending = NULL;
        c->off = c->len = 0;
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            die("epoll_ctl(ADD)");
    }
}

/* Send buf[*off:len]. 1: all gone, 0: the socket is full, -1: dead. */
static int send_from(int fd, const unsigned char *buf, size_t *off, size_t len)
{
    while (*off < len) {
        ssize_t n = send(fd, buf + *off, len - *off, MSG_NOSIGNAL);
        if (n > 0) {
            *off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return -1;
        }
    }
    return 1;
}

static void handle(int ep, struct conn *c, unsigned events)
{
    size_t off = 0, len;
    ssize_t n;
    int rc;

    if (c->pending) { /* waiting for EPOLLOUT to flush the rest */
        rc = send_from(c->fd, c->pending, &c->off, c->len);
        if (rc < 0) {
            close_conn(c);
        } else if (rc > 0) {
            free(c->pending);
            c->pending = NULL;
            set_events(ep, c, EPOLLIN);
        }
        return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    n = recv(c->fd, rbuf, BUF_SIZE, 0);
    if (n == 0) {
        close_conn(c);  /* orderly shutdown by the client */
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            close_conn(c);
        return;
    }
    len = (size_t)n;
    rc = send_from(c->fd, rbuf, &off, len);
    if (rc < 0) {
        close_conn(c);
    } else if (rc == 0) {
        c->pending = malloc(len - off);
        if (!c->pending) {
            close_conn(c);
            return;
        }
        memcpy(c->pending, rbuf + off, len - off);
        c->off = 0;
        c->len = len - off;
        set_events(ep, c, EPOLLOUT);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: echo_c_server --transport tcp|unix --addr HOST:PORT|PATH\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *transport = "tcp", *addr = NULL;
    struct epoll_event ev, events[MAX_EVENTS];
    struct sigaction sa;
    int i, lfd, ep, tcp;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--transport") == 0 && i + 1 < argc)
            transport = argv[++i];
        else if (strcmp(argv[i], "--addr") == 0 && i + 1 < argc)
            addr = argv[++i];
        else
            usage();
    }
    if (!addr)
        usage();
    if (strcmp(transport, "tcp") == 0)
        tcp = 1;
    else if (strcmp(transport, "unix") == 0)
        tcp = 0;
    else
        usage();

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    lfd = tcp ? listen_tcp(addr) : listen_unix(addr);
    if (listen(lfd, 1024) != 0)
        die("listen");
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    ev.events = EPOLLIN;
    ev.data.ptr = NULL; /* NULL marks the listening socket */
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0)
        die("epoll_ctl(ADD listener)");

    printf("READY\n");
    fflush(stdout);

    while (!stop_requested) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (i = 0; i < n; i++) {
            if (events[i].data.ptr == NULL)
                accept_all(ep, lfd, tcp);
            else
                handle(ep, events[i].data.ptr, events[i].events);
        }
    }
    /* Connections are left to exit(); the socket file is ours to remove. */
    if (!tcp)
        unlink(addr);
    return 0;
}
