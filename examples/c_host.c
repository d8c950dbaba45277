/*
 * c_host: a small chat host in C, over include/chat.h.
 *
 *   c_host [--log-level LEVEL] [LISTEN_ADDR]     (default 127.0.0.1:7878)
 *   c_host --help
 *
 * It shows host-loop integration: instead of blocking in
 * chat_server_poll_once(s, -1), it asks chat_server_fds() and
 * chat_server_timeout_ms() what to wait for, waits with poll(2) on those
 * descriptors and on stdin together, then calls chat_server_poll_once(s, 0).
 *
 * stdout: "listening on ADDR" first, then one line per event:
 *   connected ID PEER | registered ID NICK registration=N |
 *   message ID NICK JSON | joined ID NICK ROOM | parted ID NICK ROOM |
 *   disconnected ID NICK REASON   (NICK is "-" for an unregistered client)
 * Each newly registered user gets {"type":"banner","text":"welcome, NICK"},
 * and its registration number N (1, 2, ...) as the library's user data
 * (chat_set_user_data), which every later event of it carries.
 *
 * stdin console: /say TEXT  (a host notice to everyone:
 *                      {"type":"notice","text":TEXT}, which no client can send),
 *   /room #ROOM TEXT  ({"type":"room","room":ROOM,"from":"host","text":TEXT}
 *                      to the room's members only), /kick NICK (any case:
 *   the library looks the nick up), /stats, /quit.
 * /quit, SIGINT or SIGTERM: graceful shutdown, "stopped", exit 0. At the end
 * of stdin (</dev/null, or under a service manager) the console is off and
 * the host keeps serving until a signal.
 *
 * The library's log records go to stderr as "chat: LEVEL: MESSAGE", at
 * --log-level (off, error, warn, info, debug, trace; default warn) and
 * above: chat_server_set_log.
 *
 * Build: cc -std=c11 -Iinclude examples/c_host.c target/debug/libchat.a \
 *           -lpthread -ldl -lm -o c_host
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat.h"

#define NICK_MAX 32
#define CONSOLE_LINE_MAX 4096
#define SHUTDOWN_DEADLINE_MS 2000

/* The signal handler only sets this and wakes the server. */
static volatile sig_atomic_t stop_requested = 0;
static ChatServer *volatile signal_server = NULL;

static void on_signal(int sig)
{
    int saved = errno;
    ChatServer *s = signal_server;
    (void)sig;
    stop_requested = 1;
    if (s != NULL) {
        chat_server_wakeup(s); /* the one call that is safe here */
    }
    errno = saved;
}

/* Users registered so far: the next one's number. */
static uint64_t registrations = 0;

/* Appends `s` as a JSON string (quoted, escaped) to out[*len..cap).
 * Returns 0, or -1 if it does not fit. */
static int put_json_string(char *out, size_t cap, size_t *len, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = *len;
    const unsigned char *p;
    if (n + 1 >= cap) {
        return -1;
    }
    out[n++] = '"';
    for (p = (const unsigned char *)s; *p != '\0'; p++) {
        if (n + 7 >= cap) {
            return -1;
        }
        if (*p == '"' || *p == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*p;
        } else if (*p < 0x20) {
            out[n++] = '\\';
            out[n++] = 'u';
            out[n++] = '0';
            out[n++] = '0';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 0xf];
        } else {
            out[n++] = (char)*p;
        }
    }
    if (n + 2 > cap) {
        return -1;
    }
    out[n++] = '"';
    out[n] = '\0';
    *len = n;
    return 0;
}

/* Appends a literal piece of JSON. */
static int put_raw(char *out, size_t cap, size_t *len, const char *s)
{
    size_t k = strlen(s);
    if (*len + k + 1 > cap) {
        return -1;
    }
    memcpy(out + *len, s, k + 1);
    *len += k;
    return 0;
}

static void report(const char *what, int code)
{
    const char *detail = chat_last_error();
    fprintf(stderr, "c_host: %s: %s (%s)\n", what, chat_strerror(code), detail ? detail : "");
}

static void send_banner(ChatServer *s, uint64_t client, const char *nick)
{
    char text[NICK_MAX + 16];
    char json[2 * sizeof text + 64];
    size_t len = 0;
    int rc;
    snprintf(text, sizeof text, "welcome, %s", nick);
    if (put_raw(json, sizeof json, &len, "{\"type\":\"banner\",\"text\":") != 0 ||
        put_json_string(json, sizeof json, &len, text) != 0 || put_raw(json, sizeof json, &len, "}") != 0) {
        fprintf(stderr, "c_host: banner too long\n");
        return;
    }
    rc = chat_send(s, client, (const uint8_t *)json, len);
    /* The client may already be gone again: its event comes next. */
    if (rc < 0 && rc != CHAT_ERR_UNKNOWN_CLIENT) {
        report("chat_send", rc);
    }
}

/* Logs and acts on every waiting event. */
static int drain_events(ChatServer *s)
{
    ChatEvent ev;
    int rc;
    memset(&ev, 0, sizeof ev);
    ev.struct_size = (uint32_t)sizeof ev; /* what this host knows of the struct */
    while ((rc = chat_server_next_event(s, &ev)) == 1) {
        switch (ev.kind) {
        case CHAT_EVENT_CONNECTED:
            printf("connected %" PRIu64 " %s\n", ev.client, ev.peer);
            break;
        case CHAT_EVENT_REGISTERED: {
            char nick[NICK_MAX + 1];
            int set;
            /* ev's pointers die with the next call on s: keep copies. */
            snprintf(nick, sizeof nick, "%s", ev.nick);
            set = chat_set_user_data(s, ev.client, registrations + 1);
            if (set == CHAT_OK) {
                registrations++;
                printf("registered %" PRIu64 " %s registration=%" PRIu64 "\n", ev.client, nick, registrations);
            } else {
                /* Gone again already: its DISCONNECTED comes next. */
                if (set != CHAT_ERR_UNKNOWN_CLIENT) {
                    report("chat_set_user_data", set);
                }
                printf("registered %" PRIu64 " %s\n", ev.client, nick);
            }
            send_banner(s, ev.client, nick);
            break;
        }
        case CHAT_EVENT_MESSAGE:
            printf("message %" PRIu64 " %s %.*s\n", ev.client, ev.nick, (int)ev.payload_len,
                   (const char *)ev.payload);
            break;
        case CHAT_EVENT_JOINED:
            printf("joined %" PRIu64 " %s %s\n", ev.client, ev.nick, ev.room);
            break;
        case CHAT_EVENT_PARTED:
            printf("parted %" PRIu64 " %s %s\n", ev.client, ev.nick, ev.room);
            break;
        case CHAT_EVENT_DISCONNECTED:
            printf("disconnected %" PRIu64 " %s %s\n", ev.client, ev.nick ? ev.nick : "-", ev.reason);
            break;
        default:
            printf("event %" PRIu32 " %" PRIu64 "\n", ev.kind, ev.client);
            break;
        }
    }
    if (rc < 0) {
        report("chat_server_next_event", rc);
    }
    return rc;
}

static void print_stats(const ChatServer *s)
{
    ChatStats st;
    int rc;
    memset(&st, 0, sizeof st);
    st.struct_size = (uint32_t)sizeof st;
    rc = chat_server_stats(s, &st);
    if (rc != CHAT_OK) {
        report("chat_server_stats", rc);
        return;
    }
    printf("stats clients=%" PRIu64 " registered=%" PRIu64 " accepted=%" PRIu64 " refused=%" PRIu64
           " frames_in=%" PRIu64 " frames_out=%" PRIu64 " bytes_in=%" PRIu64 " bytes_out=%" PRIu64
           " queued_bytes=%" PRIu64 " peak_queued_bytes=%" PRIu64 " kicked=%" PRIu64 "\n",
           st.clients, st.registered, st.accepted, st.refused, st.frames_in, st.frames_out, st.bytes_in,
           st.bytes_out, st.queued_bytes, st.peak_queued_bytes, st.disconnects_kicked);
}

/* "/room #ROOM TEXT": the text to the room's members only. */
static void room_command(ChatServer *s, const char *args)
{
    char room[CONSOLE_LINE_MAX];
    char json[3 * CONSOLE_LINE_MAX + 64];
    size_t len = 0;
    const char *space = strchr(args, ' ');
    size_t room_len;
    int rc;
    if (space == NULL || space == args) {
        fprintf(stderr, "c_host: usage: /room #ROOM TEXT\n");
        return;
    }
    room_len = (size_t)(space - args);
    memcpy(room, args, room_len); /* args is a console line: shorter than room */
    room[room_len] = '\0';
    if (put_raw(json, sizeof json, &len, "{\"type\":\"room\",\"room\":") != 0 ||
        put_json_string(json, sizeof json, &len, room) != 0 ||
        put_raw(json, sizeof json, &len, ",\"from\":\"host\",\"text\":") != 0 ||
        put_json_string(json, sizeof json, &len, space + 1) != 0 || put_raw(json, sizeof json, &len, "}") != 0) {
        fprintf(stderr, "c_host: /room: text too long\n");
        return;
    }
    rc = chat_room_send(s, room, (const uint8_t *)json, len);
    if (rc < 0) {
        report("chat_room_send", rc);
    }
}

/* "/kick NICK": the library finds the user, in any case. */
static void kick_command(ChatServer *s, const char *nick)
{
    int64_t id = chat_find_client(s, nick);
    int rc;
    if (id < 0) {
        fprintf(stderr, "c_host: /kick: no user %s\n", nick);
        return;
    }
    rc = chat_kick(s, (uint64_t)id, "kicked by the host");
    if (rc < 0) {
        report("chat_kick", rc);
    }
}

/* Set by /quit: shut down as for a signal. */
static int quit_requested = 0;

static void console_command(ChatServer *s, const char *line)
{
    int rc;
    if (strncmp(line, "/say ", 5) == 0) {
        /* A host notice: {"type":"notice","text":TEXT}, a type no client can
         * send, so no user (not even one named "host") can pose as us. */
        rc = chat_notice_all(s, line + 5);
        if (rc < 0) {
            report("chat_notice_all", rc);
        }
    } else if (strncmp(line, "/room", 5) == 0 && (line[5] == ' ' || line[5] == '\0')) {
        room_command(s, line[5] == ' ' ? line + 6 : "");
    } else if (strncmp(line, "/kick ", 6) == 0) {
        kick_command(s, line + 6);
    } else if (strcmp(line, "/stats") == 0) {
        print_stats(s);
    } else if (strcmp(line, "/quit") == 0) {
        quit_requested = 1;
    } else if (line[0] != '\0') {
        fprintf(stderr,
                "c_host: unknown command (try /say TEXT, /room #ROOM TEXT, /kick NICK, /stats, /quit): %s\n",
                line);
    }
}

/* Reads what stdin has and runs each complete line. Returns 0 at EOF. */
static int read_console(ChatServer *s)
{
    static char buf[CONSOLE_LINE_MAX];
    static size_t have = 0;
    ssize_t n = read(STDIN_FILENO, buf + have, sizeof buf - 1 - have);
    char *start;
    char *nl;
    if (n < 0) {
        return errno == EINTR || errno == EAGAIN;
    }
    if (n == 0) {
        if (have > 0) { /* a last line without a newline */
            buf[have] = '\0';
            console_command(s, buf);
            have = 0;
        }
        return 0;
    }
    have += (size_t)n;
    buf[have] = '\0';
    start = buf;
    while ((nl = strchr(start, '\n')) != NULL) {
        *nl = '\0';
        if (nl > start && nl[-1] == '\r') {
            nl[-1] = '\0';
        }
        console_command(s, start);
        start = nl + 1;
    }
    have = (size_t)(buf + have - start);
    memmove(buf, start, have);
    if (have == sizeof buf - 1) { /* a line longer than the buffer: run it as is */
        buf[have] = '\0';
        console_command(s, buf);
        have = 0;
    }
    return 1;
}

/* The pump: the server's descriptors and, while it is open, stdin in one
 * poll(2). At the end of stdin the console is off: the host keeps serving
 * (a service has no stdin) and stops at /quit or a signal only. */
static int run(ChatServer *s, int stdin_open)
{
    ChatPollFd *watch = NULL;
    struct pollfd *pfds = NULL;
    size_t cap = 0;
    int failed = 0;
    while (!stop_requested && !quit_requested && !failed) {
        int n = chat_server_fds(s, watch, cap);
        int i;
        int ready;
        if (n < 0) {
            report("chat_server_fds", n);
            failed = 1;
            break;
        }
        if ((size_t)n > cap) { /* more than we have room for: grow, ask again */
            size_t want = (size_t)n + 8;
            ChatPollFd *w = realloc(watch, want * sizeof *w);
            struct pollfd *p = w ? realloc(pfds, (want + 1) * sizeof *p) : NULL;
            if (w != NULL) {
                watch = w;
            }
            if (p == NULL) {
                fprintf(stderr, "c_host: out of memory\n");
                failed = 1;
                break;
            }
            pfds = p;
            cap = want;
            continue;
        }
        for (i = 0; i < n; i++) {
            pfds[i].fd = watch[i].fd;
            pfds[i].events = (short)(((watch[i].events & CHAT_POLL_READ) ? POLLIN : 0) |
                                     ((watch[i].events & CHAT_POLL_WRITE) ? POLLOUT : 0));
            pfds[i].revents = 0;
        }
        /* A negative fd is ignored by poll(2): stdin once it has ended. */
        pfds[n].fd = stdin_open ? STDIN_FILENO : -1;
        pfds[n].events = POLLIN;
        pfds[n].revents = 0;
        ready = poll(pfds, (nfds_t)n + 1, chat_server_timeout_ms(s));
        if (ready < 0 && errno != EINTR) {
            perror("c_host: poll");
            failed = 1;
            break;
        }
        /* Ready or timed out: one round that does not block. */
        if ((i = chat_server_poll_once(s, 0)) < 0) {
            report("chat_server_poll_once", i);
            failed = 1;
            break;
        }
        if (drain_events(s) < 0) {
            failed = 1;
            break;
        }
        if (ready > 0 && (pfds[n].revents & POLLNVAL) != 0) {
            stdin_open = 0; /* not open at all */
        } else if (ready > 0 && (pfds[n].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            stdin_open = read_console(s);
            if (!stdin_open) {
                fprintf(stderr, "c_host: end of stdin: the console is off; stop with SIGINT or SIGTERM\n");
            }
            /* Commands act at once (a kick is an event already). */
            if (drain_events(s) < 0) {
                failed = 1;
            }
        }
    }
    free(watch);
    free(pfds);
    return failed ? -1 : 0;
}

/* Says goodbye to everyone and pumps until every connection is closed. */
static int shut_down(ChatServer *s)
{
    for (;;) {
        int done = chat_server_shutdown(s, SHUTDOWN_DEADLINE_MS);
        int rc;
        if (done < 0) {
            report("chat_server_shutdown", done);
            return -1;
        }
        if (drain_events(s) < 0) {
            return -1;
        }
        if (done == 1) {
            return 0;
        }
        rc = chat_server_poll_once(s, 100);
        if (rc < 0) {
            report("chat_server_poll_once", rc);
            return -1;
        }
    }
}

static const char *const level_names[] = {"off", "error", "warn", "info", "debug", "trace"};

/* The library's log records, one line each on stderr. */
static void on_log(void *user, int level, const char *message)
{
    (void)user;
    fprintf(stderr, "chat: %s: %s\n", level >= 1 && level <= 5 ? level_names[level] : "?", message);
}

/* CHAT_LOG_* for a level's name, or -1. */
static int log_level(const char *name)
{
    int i;
    for (i = 0; i <= CHAT_LOG_TRACE; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static void usage(FILE *to, const char *program)
{
    fprintf(to,
            "usage: %s [--log-level LEVEL] [LISTEN_ADDR]\n"
            "\n"
            "A chat server in C over libchat: clients connect to LISTEN_ADDR (IP:port,\n"
            "default 127.0.0.1:7878; port 0 picks a free one). Prints \"listening on ADDR\",\n"
            "then one line per event on stdout.\n"
            "\n"
            "  --log-level LEVEL  the library's records on stderr at LEVEL and above:\n"
            "                     off, error, warn, info, debug, trace (default warn)\n"
            "  --help             this text\n"
            "\n"
            "Console (stdin): /say TEXT, /room #ROOM TEXT, /kick NICK, /stats, /quit.\n"
            "Without a stdin (</dev/null, a service) it serves until SIGINT or SIGTERM,\n"
            "which shut it down gracefully, as /quit does.\n",
            program);
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1:7878";
    int level = CHAT_LOG_WARN;
    int stdin_open;
    ChatConfig cfg;
    ChatServer *s;
    struct sigaction sa;
    sigset_t stop_signals;
    int i;
    int ok;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout, argv[0]);
            return 0;
        } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc && log_level(argv[i + 1]) >= 0) {
            level = log_level(argv[++i]);
        } else if (argv[i][0] == '-' || i + 1 < argc) {
            fprintf(stderr, "c_host: bad argument: %s\n", argv[i]);
            usage(stderr, argv[0]);
            return 2;
        } else {
            addr = argv[i];
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line per event, even into a pipe */
    /* Started with stdin closed (not even /dev/null): there is no console,
     * and descriptor 0 may soon be one of the server's. */
    stdin_open = fcntl(STDIN_FILENO, F_GETFD) != -1;

    chat_config_default(&cfg);
    cfg.listen_addr = addr;
    s = chat_server_new(&cfg);
    if (s == NULL) {
        report("chat_server_new", chat_last_error_code());
        return 1;
    }
    if (chat_server_set_log(s, level, on_log, NULL) != CHAT_OK) {
        report("chat_server_set_log", chat_last_error_code());
    }

    signal_server = s;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    printf("listening on %s\n", chat_server_local_addr(s));
    fflush(stdout);

    ok = run(s, stdin_open) == 0;
    ok = shut_down(s) == 0 && ok;

    /* No handler may touch the server once it is freed. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop_signals, NULL);
    signal_server = NULL;
    chat_server_free(s);

    printf("stopped\n");
    fflush(stdout);
    return ok ? 0 : 1;
}
