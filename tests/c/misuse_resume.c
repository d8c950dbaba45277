/*
 * misuse_resume.c: the functions and event kinds of chat.h for protocol
 * 1.2's sessions and commands (chat_notice, chat_notice_all,
 * CHAT_EVENT_PARKED, CHAT_EVENT_RESUMED, CHAT_EVENT_RENAMED, the ChatStats
 * counters of sessions, ChatConfig's resume fields), called wrongly and
 * rightly: each wrong call must return its named CHAT_ERR_* code with
 * chat_last_error() / chat_last_error_code() set by that very call, and
 * each event must fill the fields its kind documents.
 *
 * It connects its own loopback sockets and speaks the framed protocol: a
 * client asks for a resumable session, drops its connection, resumes on a
 * new one with the token of its welcome, and renames itself. Run by
 * tests/c_abi_resume.rs; prints one line per failed check and a summary,
 * exits 0 only if every check passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chat.h"
#include "check.h"

#define POLL_MS 50
#define MAX_ROUNDS 200
#define NO_CLIENT 987654321u

#define EXPECT(fname, call, want)                                                                        \
    do {                                                                                                 \
        int got_;                                                                                        \
        (void)chat_server_port(NULL);                                                                    \
        got_ = (call);                                                                                   \
        check(__LINE__, fname, #call, got_, want, want < 0 ? (int)(want) : CHAT_OK);                     \
    } while (0)

/* A check of a condition, failing with `why`. */
#define CHECK(cond, what, why)                                                                           \
    do {                                                                                                 \
        checks++;                                                                                        \
        if (!(cond)) {                                                                                   \
            fail(__LINE__, what, why);                                                                   \
        }                                                                                                \
    } while (0)

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

static int connect_client(ChatServer *s)
{
    struct sockaddr_in addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(chat_server_port(s));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (const struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("connect");
        exit(1);
    }
    return fd;
}

static void send_frame(int fd, const char *json)
{
    size_t len = strlen(json);
    unsigned char head[4];
    head[0] = (unsigned char)(len >> 24);
    head[1] = (unsigned char)(len >> 16);
    head[2] = (unsigned char)(len >> 8);
    head[3] = (unsigned char)len;
    if (send(fd, head, 4, 0) != 4 || send(fd, json, len, 0) != (ssize_t)len) {
        perror("send");
        exit(1);
    }
}

/* Exactly `len` bytes from `fd`, pumping `s` meanwhile (the server writes
 * only while it is pumped). */
static void read_exact(ChatServer *s, int fd, char *buf, size_t len)
{
    size_t got = 0;
    int rounds;
    for (rounds = 0; got < len && rounds < MAX_ROUNDS; rounds++) {
        ssize_t n;
        (void)chat_server_poll_once(s, POLL_MS);
        n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
        if (n > 0) {
            got += (size_t)n;
        } else if (n == 0) {
            break;
        }
    }
    if (got < len) {
        printf("FAIL: the server did not send a whole frame\n");
        exit(1);
    }
}

/* The next frame's JSON, NUL-terminated, into `buf`. */
static void recv_frame(ChatServer *s, int fd, char *buf, size_t cap)
{
    unsigned char head[4];
    size_t len;
    read_exact(s, fd, (char *)head, 4);
    len = ((size_t)head[0] << 24) | ((size_t)head[1] << 16) | ((size_t)head[2] << 8) | head[3];
    if (len + 1 > cap) {
        printf("FAIL: a frame of %lu bytes\n", (unsigned long)len);
        exit(1);
    }
    read_exact(s, fd, buf, len);
    buf[len] = '\0';
}

/* Takes the next event, if any: 1 with `*ev` filled. The one place a
 * ChatEvent is prepared for the library. */
static int take_event(ChatServer *s, ChatEvent *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->struct_size = sizeof *ev;
    return chat_server_next_event(s, ev);
}

/* Pumps `s` until an event of `kind` arrives (skipping others). Its
 * pointers are valid until the next call on `s`. */
static ChatEvent wait_event(ChatServer *s, uint32_t kind)
{
    ChatEvent ev;
    int rounds;
    for (rounds = 0; rounds < MAX_ROUNDS; rounds++) {
        while (take_event(s, &ev) == 1) {
            if (ev.kind == kind) {
                return ev;
            }
        }
        if (chat_server_poll_once(s, POLL_MS) < 0) {
            printf("FAIL: chat_server_poll_once: %s\n", chat_last_error());
            exit(1);
        }
    }
    printf("FAIL: no event of kind %u within %d rounds\n", (unsigned)kind, MAX_ROUNDS);
    exit(1);
}

/* The string value of `"key":"..."` in `json`, into `out`. */
static int json_string(const char *json, const char *key, char *out, size_t cap)
{
    char pattern[64];
    const char *at;
    const char *end;
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    at = strstr(json, pattern);
    if (at == NULL) {
        return 0;
    }
    at += strlen(pattern);
    end = strchr(at, '"');
    if (end == NULL || (size_t)(end - at) + 1 > cap) {
        return 0;
    }
    memcpy(out, at, (size_t)(end - at));
    out[end - at] = '\0';
    return 1;
}

static void null_and_bad_arguments(ChatServer *s)
{
    size_t big_len = 70000;
    char *big = malloc(big_len + 1);

    EXPECT("chat_notice", chat_notice(NULL, 1, "hi"), CHAT_ERR_NULL);
    EXPECT("chat_notice", chat_notice(s, 1, NULL), CHAT_ERR_NULL);
    EXPECT("chat_notice", chat_notice(s, NO_CLIENT, "hi"), CHAT_ERR_UNKNOWN_CLIENT);
    EXPECT("chat_notice", chat_notice(s, 0, "hi"), CHAT_ERR_UNKNOWN_CLIENT);
    EXPECT("chat_notice", chat_notice(s, 1, "\xff\xfe"), CHAT_ERR_UTF8);
    EXPECT("chat_notice_all", chat_notice_all(NULL, "hi"), CHAT_ERR_NULL);
    EXPECT("chat_notice_all", chat_notice_all(s, NULL), CHAT_ERR_NULL);
    EXPECT("chat_notice_all", chat_notice_all(s, "\xc3"), CHAT_ERR_UTF8);
    /* Nobody registered: queued to no one. */
    EXPECT("chat_notice_all", chat_notice_all(s, "anyone?"), 0);
    if (big != NULL) {
        memset(big, 'x', big_len);
        big[big_len] = '\0';
        EXPECT("chat_notice_all", chat_notice_all(s, big), CHAT_ERR_TOO_LARGE);
        free(big);
    }
}

/* A session parks, takes a notice, resumes on a new id, and renames. */
static void session_events(ChatServer *s)
{
    char frame[4096];
    char token[64];
    char hello[256];
    ChatEvent ev;
    ChatStats st;
    uint64_t first;
    uint64_t second;
    int fd;
    int fd2;

    fd = connect_client(s);
    send_frame(fd, "{\"type\":\"hello\",\"nick\":\"alice\",\"resumable\":true}");
    recv_frame(s, fd, frame, sizeof frame);
    CHECK(json_string(frame, "session", token, sizeof token), "welcome", "no session token");
    ev = wait_event(s, CHAT_EVENT_REGISTERED);
    first = ev.client;
    EXPECT("chat_set_user_data", chat_set_user_data(s, first, 7), CHAT_OK);
    EXPECT("chat_notice", chat_notice(s, first, "welcome, alice"), CHAT_OK);
    EXPECT("chat_notice_all", chat_notice_all(s, "to everyone"), 1);
    recv_frame(s, fd, frame, sizeof frame);
    CHECK(strcmp(frame, "{\"type\":\"notice\",\"text\":\"welcome, alice\"}") == 0, "chat_notice", frame);
    recv_frame(s, fd, frame, sizeof frame);
    CHECK(strcmp(frame, "{\"type\":\"notice\",\"text\":\"to everyone\"}") == 0, "chat_notice_all", frame);

    close(fd);
    ev = wait_event(s, CHAT_EVENT_PARKED);
    CHECK(ev.client == first, "CHAT_EVENT_PARKED", "wrong client");
    CHECK(ev.reason != NULL && strcmp(ev.reason, "disconnect") == 0, "CHAT_EVENT_PARKED", "reason");
    CHECK(ev.nick != NULL && strcmp(ev.nick, "alice") == 0, "CHAT_EVENT_PARKED", "nick");
    CHECK(ev.user_data == 7, "CHAT_EVENT_PARKED", "user data");
    /* Parked: the id still takes the host's calls. */
    EXPECT("chat_notice", chat_notice(s, first, "while you were away"), CHAT_OK);
    EXPECT("chat_notice_all", chat_notice_all(s, "parked ones too"), 1);
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    EXPECT("chat_server_stats", chat_server_stats(s, &st), CHAT_OK);
    CHECK(st.parked == 1 && st.resumed == 0 && st.retained_bytes > 0, "ChatStats", "parked counters");
    /* A host built before these counters: they are not written. */
    memset(&st, 0, sizeof st);
    st.struct_size = (uint32_t)offsetof(ChatStats, parked);
    st.parked = 99;
    EXPECT("chat_server_stats", chat_server_stats(s, &st), CHAT_OK);
    CHECK(st.parked == 99, "ChatStats with a short struct_size", "wrote past struct_size");

    fd2 = connect_client(s);
    /* The two notices and nothing else were sent on the session. */
    snprintf(hello, sizeof hello,
             "{\"type\":\"hello\",\"nick\":\"alice\",\"resume\":{\"session\":\"%s\",\"received\":2}}", token);
    send_frame(fd2, hello);
    recv_frame(s, fd2, frame, sizeof frame);
    CHECK(strstr(frame, "\"resumed\":true") != NULL, "resume welcome", frame);
    recv_frame(s, fd2, frame, sizeof frame);
    CHECK(strstr(frame, "while you were away") != NULL, "replayed notice", frame);
    recv_frame(s, fd2, frame, sizeof frame);
    CHECK(strstr(frame, "parked ones too") != NULL, "replayed notice_all", frame);
    ev = wait_event(s, CHAT_EVENT_RESUMED);
    second = ev.client;
    CHECK(second != first, "CHAT_EVENT_RESUMED", "the session keeps no old id");
    CHECK(ev.previous == first, "CHAT_EVENT_RESUMED", "previous is not the old id");
    CHECK(ev.user_data == 7, "CHAT_EVENT_RESUMED", "user data did not move");
    CHECK(ev.nick != NULL && strcmp(ev.nick, "alice") == 0, "CHAT_EVENT_RESUMED", "nick");
    EXPECT("chat_notice", chat_notice(s, first, "old id"), CHAT_ERR_UNKNOWN_CLIENT);
    EXPECT("chat_set_user_data", chat_set_user_data(s, first, 1), CHAT_ERR_UNKNOWN_CLIENT);
    EXPECT("chat_notice", chat_notice(s, second, "new id"), CHAT_OK);

    send_frame(fd2, "{\"type\":\"nick\",\"nick\":\"alicia\"}");
    ev = wait_event(s, CHAT_EVENT_RENAMED);
    CHECK(ev.client == second, "CHAT_EVENT_RENAMED", "wrong client");
    CHECK(ev.nick != NULL && strcmp(ev.nick, "alicia") == 0, "CHAT_EVENT_RENAMED", "new nick");
    CHECK(ev.old_nick != NULL && strcmp(ev.old_nick, "alice") == 0, "CHAT_EVENT_RENAMED", "old nick");
    /* Other kinds leave the new fields empty. */
    send_frame(fd2, "{\"type\":\"join\",\"room\":\"#r\"}");
    ev = wait_event(s, CHAT_EVENT_JOINED);
    CHECK(ev.old_nick == NULL && ev.previous == 0, "CHAT_EVENT_JOINED", "old_nick or previous set");

    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    EXPECT("chat_server_stats", chat_server_stats(s, &st), CHAT_OK);
    CHECK(st.parked == 0 && st.resumed == 1, "ChatStats", "after the resume");
    close(fd2);
}

static void after_shutdown(void)
{
    ChatServer *s = new_server();
    EXPECT("chat_server_shutdown", chat_server_shutdown(s, 1000), 1);
    EXPECT("chat_notice", chat_notice(s, 1, "late"), CHAT_ERR_SHUTTING_DOWN);
    EXPECT("chat_notice_all", chat_notice_all(s, "late"), CHAT_ERR_SHUTTING_DOWN);
    chat_server_free(s);
}

int main(void)
{
    ChatConfig cfg;
    ChatServer *s;

    chat_config_default(&cfg);
    CHECK(cfg.resume_window_ms == 30000 && cfg.resume_retain_bytes == 262144, "chat_config_default",
          "the resume fields do not have their documented defaults");

    s = new_server();
    null_and_bad_arguments(s);
    session_events(s);
    chat_server_free(s);
    after_shutdown();
    return summary("misuse_resume");
}
