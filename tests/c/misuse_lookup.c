/*
 * misuse_lookup.c: the version 1.2 additions of chat.h from C, called
 * wrongly and rightly: ChatEvent.struct_size (too short is refused and
 * writes nothing; a shorter struct, as an older header had, gets only the
 * whole fields it covers), the lookups (chat_find_client, chat_client_nick,
 * chat_client_peer, chat_server_local_addr, chat_server_ws_addr) with
 * NULL, unknown ids and names, and chat_server_set_log: records reach the C
 * callback of the server whose call made them, never another server's,
 * none after it is unset, and a call from inside a callback is refused.
 * Run by tests/c_abi_lookup.rs; prints one line per failed check and a
 * summary, exits 0 only if every check passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat.h"
#include "check.h"
#include "client.h"

/* An id that nothing has. */
#define NO_CLIENT 987654321u

/* Leaves a last error from chat_server_port, so that a check can tell
 * whether the call under test set its own or left it alone. */
static void set_marker(void)
{
    (void)chat_server_port(NULL);
}

/* A call returning an integer that must be `want` (a CHAT_ERR_* also set
 * as the last error by that call). */
#define EXPECT(fname, call, want)                                                                        \
    do {                                                                                                 \
        long got_;                                                                                       \
        set_marker();                                                                                    \
        got_ = (long)(call);                                                                             \
        check(__LINE__, fname, #call, got_, (long)(want), (want) < 0 ? (int)(want) : CHAT_OK);           \
    } while (0)

/* A call returning a pointer that must be NULL with the last error `code`
 * set by it. */
#define EXPECT_NULL(fname, call, code)                                                                   \
    do {                                                                                                 \
        const void *got_;                                                                                \
        set_marker();                                                                                    \
        got_ = (call);                                                                                   \
        check(__LINE__, fname, #call, got_ != NULL, 0, code);                                            \
    } while (0)

/* The last error is still the marker's: the call just made left it. */
static void expect_left_alone(int line, const char *what)
{
    const char *msg = chat_last_error();
    checks++;
    if (msg == NULL || strncmp(msg, "chat_server_port:", 17) != 0) {
        fail(line, what, "changed the last error");
    }
}

/* The string `got` must be `want`. */
static void expect_text(int line, const char *what, const char *got, const char *want)
{
    char why[256];
    checks++;
    if (got == NULL || strcmp(got, want) != 0) {
        snprintf(why, sizeof why, "is \"%s\", want \"%s\" (last error: %s)", got ? got : "NULL", want,
                 chat_last_error() ? chat_last_error() : "NULL");
        fail(line, what, why);
    }
}

static ChatServer *new_server(void)
{
    ChatConfig cfg;
    ChatServer *s;
    chat_config_default(&cfg);
    cfg.listen_addr = "127.0.0.1:0";
    s = chat_server_new(&cfg);
    if (s == NULL) {
        printf("FAIL: chat_server_new: %s\n", chat_last_error());
        exit(1);
    }
    return s;
}

/* Pumps until at least one event waits, without taking it. */
static void until_an_event_waits(ChatServer *s)
{
    int rounds;
    for (rounds = 0; rounds < MAX_ROUNDS; rounds++) {
        if (chat_server_poll_once(s, POLL_MS) > 0) {
            return;
        }
    }
    printf("FAIL: no event within %d rounds\n", MAX_ROUNDS);
    exit(1);
}

static void event_struct_size(ChatServer *s)
{
    static const uint32_t too_short[] = {0, 4, 8, (uint32_t)offsetof(ChatEvent, client) + 7};
    ChatEvent ev;
    const char *pattern;
    size_t i;
    int fd = connect_client(s);

    until_an_event_waits(s);
    for (i = 0; i < sizeof too_short / sizeof too_short[0]; i++) {
        memset(&ev, 0x5a, sizeof ev);
        ev.struct_size = too_short[i];
        EXPECT("chat_server_next_event", chat_server_next_event(s, &ev), CHAT_ERR_INVALID);
        checks++;
        if (ev.kind != 0x5a5a5a5au || ev.client != 0x5a5a5a5a5a5a5a5aull) {
            fail(__LINE__, "chat_server_next_event with a short struct_size", "wrote into the struct");
        }
    }

    /* As a host whose header's ChatEvent ended at peer would see it, with
     * half of nick covered as well: nick is not a whole field, so it is
     * left as the host had it. */
    memset(&ev, 0x5a, sizeof ev);
    memcpy(&pattern, (const char *)&ev + offsetof(ChatEvent, nick), sizeof pattern);
    ev.struct_size = (uint32_t)(offsetof(ChatEvent, nick) + 4);
    EXPECT("chat_server_next_event", chat_server_next_event(s, &ev), 1);
    checks++;
    if (ev.kind != CHAT_EVENT_CONNECTED || ev.client == 0 || ev.peer == NULL ||
        strncmp(ev.peer, "127.0.0.1:", 10) != 0) {
        fail(__LINE__, "a short ChatEvent", "kind, client or peer not filled: the event was not kept");
    }
    checks++;
    if (ev.nick != pattern || ev.struct_size != offsetof(ChatEvent, nick) + 4) {
        fail(__LINE__, "a short ChatEvent", "a field past struct_size, or struct_size, was written");
    }
    close(fd);
    (void)wait_event(s, CHAT_EVENT_DISCONNECTED);
}

static void lookups(ChatServer *s)
{
    char local[64];
    int alice_fd;
    int quiet_fd;
    uint64_t alice;
    uint64_t quiet;

    snprintf(local, sizeof local, "127.0.0.1:%u", (unsigned)chat_server_port(s));
    expect_text(__LINE__, "chat_server_local_addr(s)", chat_server_local_addr(s), local);
    EXPECT_NULL("chat_server_local_addr", chat_server_local_addr(NULL), CHAT_ERR_NULL);
    EXPECT_NULL("chat_server_ws_addr", chat_server_ws_addr(NULL), CHAT_ERR_NULL);
    set_marker();
    checks++;
    if (chat_server_ws_addr(s) != NULL) {
        fail(__LINE__, "chat_server_ws_addr(s)", "not NULL without a WebSocket listener");
    }
    expect_left_alone(__LINE__, "chat_server_ws_addr(s) without a WebSocket listener");

    alice = registered(s, "Alice", &alice_fd);
    EXPECT("chat_find_client", chat_find_client(s, "Alice"), (long)alice);
    EXPECT("chat_find_client", chat_find_client(s, "ALICE"), (long)alice);
    EXPECT("chat_find_client", chat_find_client(s, "alice"), (long)alice);
    EXPECT("chat_find_client", chat_find_client(s, "bob"), CHAT_ERR_UNKNOWN_CLIENT);
    EXPECT("chat_find_client", chat_find_client(s, ""), CHAT_ERR_UNKNOWN_CLIENT);
    EXPECT("chat_find_client", chat_find_client(NULL, "alice"), CHAT_ERR_NULL);
    EXPECT("chat_find_client", chat_find_client(s, NULL), CHAT_ERR_NULL);
    EXPECT("chat_find_client", chat_find_client(s, "\xff\xfe"), CHAT_ERR_UTF8);

    expect_text(__LINE__, "chat_client_nick(s, alice)", chat_client_nick(s, alice), "Alice");
    EXPECT_NULL("chat_client_nick", chat_client_nick(NULL, alice), CHAT_ERR_NULL);
    EXPECT_NULL("chat_client_nick", chat_client_nick(s, NO_CLIENT), CHAT_ERR_UNKNOWN_CLIENT);
    EXPECT_NULL("chat_client_nick", chat_client_nick(s, 0), CHAT_ERR_UNKNOWN_CLIENT);
    checks++;
    if (chat_client_peer(s, alice) == NULL || strncmp(chat_client_peer(s, alice), "127.0.0.1:", 10) != 0) {
        fail(__LINE__, "chat_client_peer(s, alice)", "is not a loopback address");
    }
    EXPECT_NULL("chat_client_peer", chat_client_peer(NULL, alice), CHAT_ERR_NULL);
    EXPECT_NULL("chat_client_peer", chat_client_peer(s, NO_CLIENT), CHAT_ERR_UNKNOWN_CLIENT);

    /* Connected, no hello yet: an address, no nick, and that is no error. */
    quiet_fd = connect_client(s);
    quiet = wait_event(s, CHAT_EVENT_CONNECTED).client;
    set_marker();
    checks++;
    if (chat_client_nick(s, quiet) != NULL) {
        fail(__LINE__, "chat_client_nick(s, quiet)", "a client without hello has a nick");
    }
    expect_left_alone(__LINE__, "chat_client_nick of a client without hello");
    checks++;
    if (chat_client_peer(s, quiet) == NULL) {
        fail(__LINE__, "chat_client_peer(s, quiet)", "a connected client has no address");
    }

    /* Gone: the nick is free and the id unknown. */
    close(alice_fd);
    (void)wait_event(s, CHAT_EVENT_DISCONNECTED);
    EXPECT("chat_find_client", chat_find_client(s, "alice"), CHAT_ERR_UNKNOWN_CLIENT);
    EXPECT_NULL("chat_client_nick", chat_client_nick(s, alice), CHAT_ERR_UNKNOWN_CLIENT);
    EXPECT_NULL("chat_client_peer", chat_client_peer(s, alice), CHAT_ERR_UNKNOWN_CLIENT);
    close(quiet_fd);
    (void)wait_event(s, CHAT_EVENT_DISCONNECTED);
}

/* What one server's log callback saw. */
struct seen {
    int records;
    int first_level;
    char first[256];
    int connected; /* records about a connection */
    ChatServer *reenter; /* if set, the callback calls this server */
    int reentry;
};

static void on_log(void *user, int level, const char *message)
{
    struct seen *seen = user;
    if (seen->records++ == 0) {
        seen->first_level = level;
        snprintf(seen->first, sizeof seen->first, "%s", message);
    }
    if (strstr(message, " connected from ") != NULL) {
        seen->connected++;
    }
    if (seen->reenter != NULL) {
        seen->reentry = chat_server_poll_once(seen->reenter, 0);
    }
}

static void logging(void)
{
    ChatServer *a = new_server();
    ChatServer *b = new_server();
    struct seen seen_a;
    struct seen seen_b;
    char port[16];
    int before;
    int fds[3];

    memset(&seen_a, 0, sizeof seen_a);
    memset(&seen_b, 0, sizeof seen_b);
    EXPECT("chat_server_set_log", chat_server_set_log(NULL, CHAT_LOG_INFO, on_log, &seen_a), CHAT_ERR_NULL);
    EXPECT("chat_server_set_log", chat_server_set_log(a, 6, on_log, &seen_a), CHAT_ERR_INVALID);
    EXPECT("chat_server_set_log", chat_server_set_log(a, -1, on_log, &seen_a), CHAT_ERR_INVALID);
    checks++;
    if (seen_a.records != 0) {
        fail(__LINE__, "chat_server_set_log", "a refused callback got records");
    }

    /* The first record says where the server listens. */
    EXPECT("chat_server_set_log", chat_server_set_log(a, CHAT_LOG_DEBUG, on_log, &seen_a), CHAT_OK);
    EXPECT("chat_server_set_log", chat_server_set_log(b, CHAT_LOG_DEBUG, on_log, &seen_b), CHAT_OK);
    snprintf(port, sizeof port, ":%u", (unsigned)chat_server_port(a));
    checks++;
    if (seen_a.records != 1 || seen_a.first_level != CHAT_LOG_INFO || strstr(seen_a.first, port) == NULL) {
        fail(__LINE__, "the first record", seen_a.first);
    }

    /* A connection to b is b's record only. */
    fds[0] = connect_client(b);
    (void)wait_event(b, CHAT_EVENT_CONNECTED);
    (void)chat_server_poll_once(a, 0);
    checks++;
    if (seen_b.connected != 1 || seen_a.connected != 0) {
        fail(__LINE__, "a connection to b", "not logged to b's callback alone");
    }

    /* The callback must not call the library: such a call is refused. */
    seen_a.reenter = a;
    fds[1] = connect_client(a);
    (void)wait_event(a, CHAT_EVENT_CONNECTED);
    seen_a.reenter = NULL;
    checks++;
    if (seen_a.connected != 1 || seen_a.reentry != CHAT_ERR_INVALID) {
        fail(__LINE__, "a call from inside a log callback", "was not refused with CHAT_ERR_INVALID");
    }

    /* Unset (level 0, or a NULL function): nothing more arrives. */
    EXPECT("chat_server_set_log", chat_server_set_log(a, CHAT_LOG_OFF, on_log, &seen_a), CHAT_OK);
    EXPECT("chat_server_set_log", chat_server_set_log(b, CHAT_LOG_TRACE, NULL, NULL), CHAT_OK);
    before = seen_a.records + seen_b.records;
    fds[2] = connect_client(a);
    (void)wait_event(a, CHAT_EVENT_CONNECTED);
    close(fds[0]);
    (void)wait_event(b, CHAT_EVENT_DISCONNECTED);
    checks++;
    if (seen_a.records + seen_b.records != before) {
        fail(__LINE__, "unset callbacks", "still got records");
    }
    close(fds[1]);
    close(fds[2]);
    chat_server_free(a);
    chat_server_free(b);
}

int main(void)
{
    ChatServer *s = new_server();
    event_struct_size(s);
    lookups(s);
    chat_server_free(s);
    logging();
    return summary("misuse_lookup");
}
