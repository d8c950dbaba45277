/*
 * sigpipe_host: a C host with SIGPIPE at its default action (terminate),
 * for tests/faults.rs. A Rust program ignores SIGPIPE from startup, so only
 * a host like this one shows whether every write the library makes uses
 * MSG_NOSIGNAL: without it, a write to a reset peer kills this process.
 *
 *   sigpipe_host [MAX_CLIENTS]   (listens on 127.0.0.1, any free port)
 *
 * stdout, one line each:
 *   listening on ADDR
 *   registered NICK               (a NICK starting with "victim" is then
 *                                  flooded: see top_up)
 *   disconnected NICK REASON
 *   stats queued=BYTES clients=N refused=N   (a client's `all` said "stats")
 *   holding                       (a client's `all` said "hold": the host
 *                                  stops pumping until a line on stdin)
 *   stopped                       (a client's `all` said "stop"; exit 0)
 * Any failure: a line on stderr and exit 1 (or 3 if SIGPIPE could not be
 * put at its default action).
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"

/* A victim is kept about QUEUE_TARGET bytes behind: frames of about
 * PAD_BYTES are added after every round while less is queued, FLOOD_FRAMES
 * at most (3.8 MB: more than the kernel takes for a stalled reader, about
 * 1.7 MB on loopback, plus the target). The 1 MiB queue cap is never hit. */
#define FLOOD_FRAMES 64
#define PAD_BYTES 60000
#define QUEUE_TARGET 512000

static char flood_json[PAD_BYTES + 64];
/* The victim being flooded (0: none), and frames it may still get. */
static uint64_t victim = 0;
static int flood_left = 0;

static void fail(const char *what, int code)
{
    const char *detail = chat_last_error();
    fprintf(stderr, "sigpipe_host: %s: %s (%s)\n", what, chat_strerror(code), detail ? detail : "");
    exit(1);
}

/* SIGPIPE at SIG_DFL and unblocked, whatever the parent left us, and
 * checked: the point of this host is that SIGPIPE would kill it. */
static void default_sigpipe(void)
{
    struct sigaction act;
    sigset_t set;
    memset(&act, 0, sizeof act);
    act.sa_handler = SIG_DFL;
    sigemptyset(&act.sa_mask);
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    if (sigaction(SIGPIPE, &act, NULL) != 0 || sigprocmask(SIG_UNBLOCK, &set, NULL) != 0 ||
        sigaction(SIGPIPE, NULL, &act) != 0 || act.sa_handler != SIG_DFL) {
        fprintf(stderr, "sigpipe_host: cannot set SIGPIPE to its default action\n");
        exit(3);
    }
}

static ChatStats get_stats(ChatServer *s)
{
    ChatStats st;
    int rc;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    rc = chat_server_stats(s, &st);
    if (rc < 0) {
        fail("chat_server_stats", rc);
    }
    return st;
}

static void print_stats(ChatServer *s)
{
    ChatStats st = get_stats(s);
    printf("stats queued=%llu clients=%llu refused=%llu\n", (unsigned long long)st.queued_bytes,
           (unsigned long long)st.clients, (unsigned long long)st.refused);
}

/* Keeps the victim's queue topped up (the only queue of any size). */
static void top_up(ChatServer *s)
{
    int rc, len;
    while (victim != 0 && flood_left > 0 && get_stats(s).queued_bytes < QUEUE_TARGET) {
        len = snprintf(flood_json, sizeof flood_json, "{\"type\":\"bulk\",\"left\":%d,\"pad\":\"%0*d\"}",
                       flood_left, PAD_BYTES, 0);
        rc = chat_send(s, victim, (const uint8_t *)flood_json, (size_t)len);
        if (rc == CHAT_ERR_UNKNOWN_CLIENT) {
            victim = 0; /* gone: its event comes next */
        } else if (rc < 0) {
            fail("chat_send", rc);
        }
        flood_left--;
    }
}

/* Stops pumping until a line (or EOF) on stdin, so that a test can act on
 * connections the server cannot see yet (still in the listen backlog). */
static void hold(void)
{
    char line[64];
    printf("holding\n");
    fflush(stdout);
    if (fgets(line, sizeof line, stdin) == NULL && ferror(stdin)) {
        fprintf(stderr, "sigpipe_host: reading stdin failed\n");
        exit(1);
    }
}

/* Handles every waiting event; returns 1 when asked to stop. */
static int handle_events(ChatServer *s)
{
    ChatEvent ev;
    int rc, stop = 0;
    memset(&ev, 0, sizeof ev);
    ev.struct_size = sizeof ev; /* the library writes only what this covers */
    while ((rc = chat_server_next_event(s, &ev)) == 1) {
        switch (ev.kind) {
        case CHAT_EVENT_REGISTERED:
            printf("registered %s\n", ev.nick);
            if (strncmp(ev.nick, "victim", 6) == 0) {
                victim = ev.client;
                flood_left = FLOOD_FRAMES;
            }
            break;
        case CHAT_EVENT_DISCONNECTED:
            printf("disconnected %s %s\n", ev.nick ? ev.nick : "-", ev.reason);
            if (ev.client == victim) {
                victim = 0;
            }
            break;
        case CHAT_EVENT_MESSAGE:
            if (strstr((const char *)ev.payload, "\"text\":\"stats\"") != NULL) {
                print_stats(s);
            } else if (strstr((const char *)ev.payload, "\"text\":\"stop\"") != NULL) {
                stop = 1;
            } else if (strstr((const char *)ev.payload, "\"text\":\"hold\"") != NULL) {
                hold();
            }
            break;
        default:
            break;
        }
    }
    if (rc < 0) {
        fail("chat_server_next_event", rc);
    }
    fflush(stdout);
    return stop;
}

int main(int argc, char **argv)
{
    ChatConfig cfg;
    ChatServer *s;
    int rc;

    default_sigpipe();
    chat_config_default(&cfg);
    cfg.listen_addr = "127.0.0.1:0";
    if (argc > 1) {
        cfg.max_clients = (uint32_t)strtoul(argv[1], NULL, 10);
    }
    s = chat_server_new(&cfg);
    if (s == NULL) {
        fail("chat_server_new", chat_last_error_code());
    }
    printf("listening on 127.0.0.1:%u\n", (unsigned)chat_server_port(s));
    fflush(stdout);
    for (;;) {
        rc = chat_server_poll_once(s, -1);
        if (rc < 0) {
            fail("chat_server_poll_once", rc);
        }
        if (handle_events(s)) {
            break;
        }
        top_up(s);
    }
    while ((rc = chat_server_shutdown(s, 2000)) == 0) {
        rc = chat_server_poll_once(s, 100);
        if (rc < 0) {
            fail("chat_server_poll_once", rc);
        }
    }
    if (rc < 0) {
        fail("chat_server_shutdown", rc);
    }
    chat_server_free(s);
    printf("stopped\n");
    return 0;
}
