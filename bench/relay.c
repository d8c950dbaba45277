/*
 * The floor for the benchmarks: a minimal select() relay that copies every
 * length-prefixed frame (4-byte big-endian length, then payload), unparsed,
 * to every other connected client. No hello, no JSON, no per-client state
 * beyond two byte buffers: the least work per delivery a single-threaded
 * select() server of this design can do. bench/compare.sh builds it with
 * `gcc -O2` and measures it beside the chat server and Redis, so every
 * figure is also a ratio to it.
 *
 *   relay [--listen 127.0.0.1:PORT] [--read-bytes N]
 *
 * Prints `listening on ADDR` first (like chat_server), then serves until
 * SIGINT or SIGTERM. Loopback addresses only.
 *
 * A round: select() over the listener and every client; accept; for every
 * readable client one recv() of up to --read-bytes (default 128 KiB, the
 * chat server's read budget) appended to its input; the complete frames at
 * its front are sent to every other client straight from that buffer when
 * the recipient has nothing queued (no copy at all), else appended to the
 * recipient's queue (one memcpy); then every client with queued bytes and a
 * writable socket gets one send(). Level-triggered select() brings back
 * whatever a round left unread.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

struct buf {
    char *data;
    size_t start, len, cap; /* bytes data[start .. start+len) */
};

struct client {
    int open;
    int dead; /* failed this round: dropped at its end, skipped till then */
    struct buf in, out;
};

static struct client clients[FD_SETSIZE];
static int fds[FD_SETSIZE], nfds_open;
static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

/* Room for `more` bytes after the buffered ones, moving them to the front
 * first when that is enough. */
static void reserve(struct buf *b, size_t more) {
    if (b->start > 0 && (b->len == 0 || b->start + b->len + more > b->cap)) {
        memmove(b->data, b->data + b->start, b->len);
        b->start = 0;
    }
    if (b->len + more > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + more)
            cap *= 2;
        b->data = realloc(b->data, cap);
        if (!b->data)
            die("realloc");
        b->cap = cap;
    }
}

static void drop(int fd) {
    struct client *c = &clients[fd];
    close(fd);
    free(c->in.data);
    free(c->out.data);
    memset(c, 0, sizeof *c);
    for (int i = 0; i < nfds_open; i++)
        if (fds[i] == fd) {
            fds[i] = fds[--nfds_open];
            break;
        }
}

/* Writes what is queued for fd; 0 if the connection failed. */
static int flush_out(int fd) {
    struct buf *o = &clients[fd].out;
    while (o->len > 0) {
        ssize_t n = send(fd, o->data + o->start, o->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        o->start += (size_t)n;
        o->len -= (size_t)n;
        if (o->len == 0)
            o->start = 0;
    }
    return 1;
}

/* Sends `len` bytes to fd: straight from the sender's buffer when nothing
 * is queued for it, the rest (or all) appended to its queue. */
static int deliver(int fd, const char *bytes, size_t len) {
    struct buf *o = &clients[fd].out;
    if (o->len == 0) {
        for (;;) {
            ssize_t n = send(fd, bytes, len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n >= 0) {
                bytes += n;
                len -= (size_t)n;
                if (len == 0)
                    return 1;
                break;
            }
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return 0;
        }
    }
    reserve(o, len);
    memcpy(o->data + o->start + o->len, bytes, len);
    o->len += len;
    return 1;
}

/* Length of the complete frames at the front of b. */
static size_t complete_frames(const struct buf *b) {
    const unsigned char *p = (const unsigned char *)b->data + b->start;
    size_t at = 0;
    while (b->len - at >= 4) {
        uint32_t n = (uint32_t)p[at] << 24 | (uint32_t)p[at + 1] << 16 | (uint32_t)p[at + 2] << 8 | p[at + 3];
        if (b->len - at - 4 < n)
            break;
        at += 4 + (size_t)n;
    }
    return at;
}

/* Length the frame at the front of b will need in all, once its prefix is
 * in (0 if not yet known). */
static size_t head_frame_len(const struct buf *b) {
    if (b->len < 4)
        return 0;
    const unsigned char *p = (const unsigned char *)b->data + b->start;
    return 4 + ((size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]);
}

static int failed[FD_SETSIZE], nfailed;

static void fail(int fd) {
    if (!clients[fd].dead) {
        clients[fd].dead = 1;
        failed[nfailed++] = fd;
    }
}

static void read_client(int fd, size_t read_bytes) {
    struct buf *in = &clients[fd].in;
    size_t want = read_bytes;
    size_t need = head_frame_len(in);
    if (need > in->len && need - in->len > want)
        want = need - in->len; /* a frame larger than one read */
    reserve(in, want);
    ssize_t n = recv(fd, in->data + in->start + in->len, want, 0);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
        fail(fd);
        return;
    }
    if (n < 0)
        return;
    in->len += (size_t)n;
    size_t ready = complete_frames(in);
    if (ready == 0)
        return;
    const char *bytes = in->data + in->start;
    for (int i = 0; i < nfds_open; i++) {
        int to = fds[i];
        if (to != fd && !clients[to].dead && !deliver(to, bytes, ready))
            fail(to);
    }
    in->start += ready;
    in->len -= ready;
    if (in->len == 0)
        in->start = 0;
}

static int listen_on(const char *spec, struct sockaddr_in *addr) {
    char host[64] = "127.0.0.1";
    int port = 0;
    const char *colon = strrchr(spec, ':');
    if (colon) {
        size_t hl = (size_t)(colon - spec);
        if (hl >= sizeof host)
            hl = sizeof host - 1;
        memcpy(host, spec, hl);
        host[hl] = 0;
        port = atoi(colon + 1);
    }
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr->sin_addr) != 1 || (ntohl(addr->sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "relay: --listen takes a loopback IPv4 address:port\n");
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd < 0)
        die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)addr, sizeof *addr) < 0)
        die("bind");
    if (listen(fd, 4096) < 0)
        die("listen");
    socklen_t len = sizeof *addr;
    getsockname(fd, (struct sockaddr *)addr, &len);
    return fd;
}

int main(int argc, char **argv) {
    const char *spec = "127.0.0.1:0";
    size_t read_bytes = 128 * 1024;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--listen") && i + 1 < argc)
            spec = argv[++i];
        else if (!strcmp(argv[i], "--read-bytes") && i + 1 < argc)
            read_bytes = (size_t)strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: relay [--listen 127.0.0.1:PORT] [--read-bytes N]\n");
            return 2;
        }
    }
    if (read_bytes == 0)
        read_bytes = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in addr;
    int lfd = listen_on(spec, &addr);
    char shown[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &addr.sin_addr, shown, sizeof shown);
    printf("listening on %s:%d\n", shown, ntohs(addr.sin_port));
    fflush(stdout);

    while (!stop) {
        fd_set rd, wr;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        FD_SET(lfd, &rd);
        int maxfd = lfd;
        for (int i = 0; i < nfds_open; i++) {
            int fd = fds[i];
            FD_SET(fd, &rd);
            if (clients[fd].out.len > 0)
                FD_SET(fd, &wr);
            if (fd > maxfd)
                maxfd = fd;
        }
        int n = select(maxfd + 1, &rd, &wr, NULL, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("select");
        }
        if (FD_ISSET(lfd, &rd)) {
            for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                if (fd < 0)
                    break;
                if (fd >= FD_SETSIZE) {
                    close(fd);
                    continue;
                }
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                clients[fd].open = 1;
                fds[nfds_open++] = fd;
            }
        }
        nfailed = 0;
        /* Read in a fixed order over the descriptors select() named. */
        for (int i = 0; i < nfds_open; i++)
            if (FD_ISSET(fds[i], &rd) && !clients[fds[i]].dead)
                read_client(fds[i], read_bytes);
        for (int i = 0; i < nfds_open; i++) {
            int fd = fds[i];
            if (!clients[fd].dead && clients[fd].out.len > 0 && FD_ISSET(fd, &wr) && !flush_out(fd))
                fail(fd);
        }
        for (int i = 0; i < nfailed; i++)
            drop(failed[i]);
    }
    return 0;
}
