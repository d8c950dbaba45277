/*
 * misuse_rooms.c: calls the rooms and host-authority functions of chat.h
 * (chat_room_send, chat_room_members, chat_room_remove, chat_approve,
 * chat_reject, chat_release, chat_drop, chat_set_user_data) and the
 * ChatConfig fields that turn them on, wrongly and rightly, and checks that
 * each wrong call returns its named CHAT_ERR_* code with chat_last_error() /
 * chat_last_error_code() set by that very call.
 *
 * Real clients are needed for most codes (a room exists only while it has
 * members; a ticket only while a message is held), so this program connects
 * its own loopback sockets to the server and speaks the framed protocol.
 * Run by tests/c_abi_rooms.rs; prints one line per failed check and a
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

/* An id and a ticket that nothing has. */
#define NO_CLIENT 987654321u
#define NO_TICKET 987654321u

/* An int-returning call that must return `want` (a count, CHAT_OK, or a
 * CHAT_ERR_* that must also be the last error). */
#define EXPECT(fname, call, want)                                                                        \
    do {                                                                                                 \
        int got_;                                                                                        \
        (void)chat_server_port(NULL);                                                                    \
        got_ = (call);                                                                                   \
        check(__LINE__, fname, #call, got_, want, want < 0 ? (int)(want) : CHAT_OK);                     \
    } while (0)

/* chat_server_new(cfg) must fail with `code`. */
static void expect_new_fails(int line, const char *what, const ChatConfig *cfg, int code)
{
    ChatServer *s;
    (void)chat_server_port(NULL);
    s = chat_server_new(cfg);
    check(line, "chat_server_new", what, s == NULL ? chat_last_error_code() : 0, code, code);
    chat_server_free(s);
}

static ChatConfig loopback(void)
{
    ChatConfig cfg;
    chat_config_default(&cfg);
    cfg.listen_addr = "127.0.0.1:0";
    return cfg;
}

static ChatServer *new_server(const ChatConfig *cfg)
{
    ChatServer *s = chat_server_new(cfg);
    if (s == NULL) {
        printf("FAIL: chat_server_new: %s\n", chat_last_error());
        exit(1);
    }
    return s;
}

static void config_fields(void)
{
    ChatConfig cfg;
    ChatServer *s;

    cfg = loopback();
    checks++;
    if (cfg.handshake_timeout_ms != 30000 || cfg.max_per_ip != 0 || cfg.rate_limit_frames != 0 ||
        cfg.rate_limit_grace_ms != 10000 || cfg.rate_limit_bytes != 0 || cfg.max_rooms_per_client != 32 ||
        cfg.max_members_per_room != 1024 || cfg.max_rooms != 1024 || cfg.approve_registrations != 0 ||
        cfg.approval_timeout_ms != 10000 || cfg.intercept_messages != 0) {
        fail(__LINE__, "chat_config_default", "the new fields do not have their documented defaults");
    }

    cfg = loopback();
    cfg.approve_registrations = 2;
    expect_new_fails(__LINE__, "approve_registrations = 2", &cfg, CHAT_ERR_CONFIG);
    cfg = loopback();
    cfg.intercept_messages = 7;
    expect_new_fails(__LINE__, "intercept_messages = 7", &cfg, CHAT_ERR_CONFIG);
    cfg = loopback();
    cfg.approval_timeout_ms = 0;
    expect_new_fails(__LINE__, "approval_timeout_ms = 0", &cfg, CHAT_ERR_CONFIG);

    /* A host built before these fields: nothing past max_events is read. */
    cfg = loopback();
    cfg.struct_size = (uint32_t)offsetof(ChatConfig, handshake_timeout_ms);
    cfg.approve_registrations = 2;
    cfg.approval_timeout_ms = 0;
    s = chat_server_new(&cfg);
    checks++;
    if (s == NULL) {
        fail(__LINE__, "chat_server_new with struct_size ending at max_events", chat_last_error());
    }
    chat_server_free(s);
}

static void null_arguments(ChatServer *s)
{
    static const char obj[] = "{\"type\":\"note\"}";
    const uint8_t *json = (const uint8_t *)obj;
    size_t len = sizeof obj - 1;
    uint64_t ids[4];

    EXPECT("chat_room_send", chat_room_send(NULL, "#r", json, len), CHAT_ERR_NULL);
    EXPECT("chat_room_send", chat_room_send(s, NULL, json, len), CHAT_ERR_NULL);
    EXPECT("chat_room_send", chat_room_send(s, "#r", NULL, len), CHAT_ERR_NULL);
    EXPECT("chat_room_send", chat_room_send(s, "#r", NULL, 0), CHAT_ERR_NULL);
    EXPECT("chat_room_members", chat_room_members(NULL, "#r", ids, 4), CHAT_ERR_NULL);
    EXPECT("chat_room_members", chat_room_members(s, NULL, ids, 4), CHAT_ERR_NULL);
    EXPECT("chat_room_members", chat_room_members(s, "#r", NULL, 4), CHAT_ERR_NULL);
    EXPECT("chat_room_remove", chat_room_remove(NULL, 1, "#r"), CHAT_ERR_NULL);
    EXPECT("chat_room_remove", chat_room_remove(s, 1, NULL), CHAT_ERR_NULL);
    EXPECT("chat_approve", chat_approve(NULL, 1), CHAT_ERR_NULL);
    EXPECT("chat_reject", chat_reject(NULL, 1, NULL), CHAT_ERR_NULL);
    EXPECT("chat_release", chat_release(NULL, 1), CHAT_ERR_NULL);
    EXPECT("chat_drop", chat_drop(NULL, 1, NULL, NULL), CHAT_ERR_NULL);
    EXPECT("chat_set_user_data", chat_set_user_data(NULL, 1, 1), CHAT_ERR_NULL);
}

/* Rooms: one client in #r, one not. */
static void room_calls(ChatServer *s)
{
    static const char obj[] = "{\"type\":\"room\",\"room\":\"#r\",\"from\":\"host\",\"text\":\"x\"}";
    const uint8_t *json = (const uint8_t *)obj;
    size_t len = sizeof obj - 1;
    static const char *not_objects[] = {"[1]", "\"text\"", "42", "null", "not json", "{\"a\":1} {\"b\":2}",
                                        "{\"a\":", "{\"a\":\"\xff\"}", ""};
    size_t big_len = 65536 + 1;
    char *big = malloc(big_len);
    uint64_t ids[4] = {0, 0, 0, 0};
    int in_fd;
    int out_fd;
    uint64_t in;
    uint64_t out;
    size_t i;

    in = registered(s, "inside", &in_fd);
    out = registered(s, "outside", &out_fd);
    send_frame(in_fd, "{\"type\":\"join\",\"room\":\"#r\"}");
    (void)wait_event(s, CHAT_EVENT_JOINED);

    EXPECT("chat_room_members", chat_room_members(s, "#R", NULL, 0), 1);
    EXPECT("chat_room_members", chat_room_members(s, "#r", ids, 4), 1);
    checks++;
    if (ids[0] != in || ids[1] != 0) {
        fail(__LINE__, "chat_room_members(s, \"#r\", ids, 4)", "did not write exactly the member's id");
    }
    EXPECT("chat_room_send", chat_room_send(s, "#r", json, len), 1);

    /* Unknown room. */
    EXPECT("chat_room_send", chat_room_send(s, "#nowhere", json, len), CHAT_ERR_UNKNOWN_ROOM);
    EXPECT("chat_room_members", chat_room_members(s, "#nowhere", ids, 4), CHAT_ERR_UNKNOWN_ROOM);
    EXPECT("chat_room_members", chat_room_members(s, "#nowhere", NULL, 0), CHAT_ERR_UNKNOWN_ROOM);
    EXPECT("chat_room_remove", chat_room_remove(s, in, "#nowhere"), CHAT_ERR_UNKNOWN_ROOM);
    EXPECT("chat_room_remove", chat_room_remove(s, in, "bad name"), CHAT_ERR_UNKNOWN_ROOM);

    /* Unknown client, and a client that is not a member. */
    EXPECT("chat_room_remove", chat_room_remove(s, NO_CLIENT, "#r"), CHAT_ERR_UNKNOWN_CLIENT);
    EXPECT("chat_room_remove", chat_room_remove(s, 0, "#r"), CHAT_ERR_UNKNOWN_CLIENT);
    EXPECT("chat_room_remove", chat_room_remove(s, out, "#r"), CHAT_ERR_NOT_IN_ROOM);

    /* Text that is not UTF-8. */
    EXPECT("chat_room_send", chat_room_send(s, "#\xff", json, len), CHAT_ERR_UTF8);
    EXPECT("chat_room_members", chat_room_members(s, "#\xff", ids, 4), CHAT_ERR_UTF8);
    EXPECT("chat_room_remove", chat_room_remove(s, in, "#\xff"), CHAT_ERR_UTF8);

    /* Payloads: not one JSON object, too large. */
    for (i = 0; i < sizeof not_objects / sizeof not_objects[0]; i++) {
        int before = failures;
        EXPECT("chat_room_send",
               chat_room_send(s, "#r", (const uint8_t *)not_objects[i], strlen(not_objects[i])),
               CHAT_ERR_NOT_JSON_OBJECT);
        if (failures != before) {
            printf("  (payload %lu: \"%s\")\n", (unsigned long)i, not_objects[i]);
        }
    }
    if (big != NULL) {
        memset(big, 'x', big_len);
        memcpy(big, "{\"a\":\"", 6);
        memcpy(big + big_len - 2, "\"}", 2);
        EXPECT("chat_room_send", chat_room_send(s, "#r", (const uint8_t *)big, big_len), CHAT_ERR_TOO_LARGE);
        free(big);
    }

    /* None of that changed the room; removing the member empties it. */
    EXPECT("chat_room_members", chat_room_members(s, "#r", NULL, 0), 1);
    EXPECT("chat_room_remove", chat_room_remove(s, in, "#r"), CHAT_OK);
    EXPECT("chat_room_members", chat_room_members(s, "#r", NULL, 0), CHAT_ERR_UNKNOWN_ROOM);
    EXPECT("chat_room_remove", chat_room_remove(s, in, "#r"), CHAT_ERR_UNKNOWN_ROOM);

    /* User data: a live client takes it, an unknown one is an error. */
    EXPECT("chat_set_user_data", chat_set_user_data(s, in, UINT64_MAX), CHAT_OK);
    EXPECT("chat_set_user_data", chat_set_user_data(s, NO_CLIENT, 1), CHAT_ERR_UNKNOWN_CLIENT);
    EXPECT("chat_set_user_data", chat_set_user_data(s, 0, 1), CHAT_ERR_UNKNOWN_CLIENT);

    /* Without approval on, a registered client is not pending. */
    EXPECT("chat_approve", chat_approve(s, in), CHAT_ERR_NOT_PENDING);
    EXPECT("chat_reject", chat_reject(s, in, "no"), CHAT_ERR_NOT_PENDING);
    EXPECT("chat_approve", chat_approve(s, NO_CLIENT), CHAT_ERR_UNKNOWN_CLIENT);
    EXPECT("chat_reject", chat_reject(s, NO_CLIENT, NULL), CHAT_ERR_UNKNOWN_CLIENT);

    /* Without interception on, no ticket exists. */
    EXPECT("chat_release", chat_release(s, NO_TICKET), CHAT_ERR_UNKNOWN_TICKET);
    EXPECT("chat_release", chat_release(s, 0), CHAT_ERR_UNKNOWN_TICKET);
    EXPECT("chat_drop", chat_drop(s, NO_TICKET, NULL, NULL), CHAT_ERR_UNKNOWN_TICKET);
    EXPECT("chat_drop", chat_drop(s, NO_TICKET, "spam", "no spam"), CHAT_ERR_UNKNOWN_TICKET);

    close(in_fd);
    close(out_fd);
}

/* Approval: a pending client, answered once. */
static void approval_calls(void)
{
    ChatConfig cfg = loopback();
    ChatServer *s;
    ChatEvent asked;
    ChatEvent reg;
    int fd;

    cfg.approve_registrations = 1;
    s = new_server(&cfg);
    fd = connect_client(s);
    send_frame(fd, "{\"type\":\"hello\",\"nick\":\"waiting\",\"token\":\"t\"}");
    asked = wait_event(s, CHAT_EVENT_APPROVAL);

    EXPECT("chat_approve", chat_approve(s, NO_CLIENT), CHAT_ERR_UNKNOWN_CLIENT);
    EXPECT("chat_reject", chat_reject(s, asked.client, "\xff\xfe"), CHAT_ERR_UTF8);
    EXPECT("chat_set_user_data", chat_set_user_data(s, asked.client, 42), CHAT_OK);
    EXPECT("chat_reject", chat_reject(s, asked.client, "unknown token"), CHAT_OK);
    EXPECT("chat_reject", chat_reject(s, asked.client, NULL), CHAT_ERR_NOT_PENDING);
    EXPECT("chat_approve", chat_approve(s, asked.client), CHAT_ERR_NOT_PENDING);

    send_frame(fd, "{\"type\":\"hello\",\"nick\":\"waiting\",\"token\":\"t\"}");
    asked = wait_event(s, CHAT_EVENT_APPROVAL);
    checks++;
    if (asked.user_data != 42) {
        fail(__LINE__, "CHAT_EVENT_APPROVAL", "does not carry the user data set earlier");
    }
    EXPECT("chat_approve", chat_approve(s, asked.client), CHAT_OK);
    reg = wait_event(s, CHAT_EVENT_REGISTERED);
    checks++;
    if (reg.client != asked.client || reg.user_data != 42) {
        fail(__LINE__, "CHAT_EVENT_REGISTERED after chat_approve", "wrong client or user data");
    }
    EXPECT("chat_approve", chat_approve(s, asked.client), CHAT_ERR_NOT_PENDING);
    close(fd);
    chat_server_free(s);
}

/* Interception: a held message, released once; bad drop arguments. */
static void interception_calls(void)
{
    ChatConfig cfg = loopback();
    ChatServer *s;
    ChatEvent held;
    int fd;

    cfg.intercept_messages = 1;
    s = new_server(&cfg);
    (void)registered(s, "talker", &fd);
    send_frame(fd, "{\"type\":\"all\",\"text\":\"held\"}");
    held = wait_event(s, CHAT_EVENT_INTERCEPTED);

    EXPECT("chat_drop", chat_drop(s, held.ticket, "", NULL), CHAT_ERR_INVALID);
    EXPECT("chat_drop", chat_drop(s, held.ticket, "\xff", NULL), CHAT_ERR_UTF8);
    EXPECT("chat_drop", chat_drop(s, held.ticket, NULL, "\xff"), CHAT_ERR_UTF8);
    EXPECT("chat_drop", chat_drop(s, held.ticket + 1, NULL, NULL), CHAT_ERR_UNKNOWN_TICKET);
    EXPECT("chat_release", chat_release(s, held.ticket + 1), CHAT_ERR_UNKNOWN_TICKET);
    EXPECT("chat_release", chat_release(s, held.ticket), CHAT_OK);
    EXPECT("chat_release", chat_release(s, held.ticket), CHAT_ERR_UNKNOWN_TICKET);
    EXPECT("chat_drop", chat_drop(s, held.ticket, NULL, NULL), CHAT_ERR_UNKNOWN_TICKET);

    send_frame(fd, "{\"type\":\"all\",\"text\":\"dropped\"}");
    held = wait_event(s, CHAT_EVENT_INTERCEPTED);
    EXPECT("chat_drop", chat_drop(s, held.ticket, NULL, "not now"), CHAT_OK);
    EXPECT("chat_release", chat_release(s, held.ticket), CHAT_ERR_UNKNOWN_TICKET);
    close(fd);
    chat_server_free(s);
}

/* Once shutdown began, calls that give the server new work are refused. */
static void after_shutdown(void)
{
    static const char obj[] = "{\"type\":\"note\"}";
    ChatConfig cfg = loopback();
    ChatServer *s = new_server(&cfg);
    int fd;
    uint64_t id = registered(s, "late", &fd);

    EXPECT("chat_server_shutdown", chat_server_shutdown(s, 1000), 0);
    EXPECT("chat_room_send", chat_room_send(s, "#r", (const uint8_t *)obj, sizeof obj - 1),
           CHAT_ERR_SHUTTING_DOWN);
    EXPECT("chat_room_remove", chat_room_remove(s, id, "#r"), CHAT_ERR_SHUTTING_DOWN);
    EXPECT("chat_approve", chat_approve(s, id), CHAT_ERR_SHUTTING_DOWN);
    EXPECT("chat_reject", chat_reject(s, id, NULL), CHAT_ERR_SHUTTING_DOWN);
    EXPECT("chat_release", chat_release(s, 1), CHAT_ERR_SHUTTING_DOWN);
    EXPECT("chat_drop", chat_drop(s, 1, NULL, NULL), CHAT_ERR_SHUTTING_DOWN);
    close(fd);
    chat_server_free(s);
}

int main(void)
{
    ChatConfig cfg = loopback();
    ChatServer *s;

    config_fields();
    s = new_server(&cfg);
    null_arguments(s);
    room_calls(s);
    chat_server_free(s);
    approval_calls();
    interception_calls();
    after_shutdown();

    return summary("misuse_rooms");
}
