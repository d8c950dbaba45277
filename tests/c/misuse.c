/*
 * misuse.c: calls every function of chat.h with NULL pointers, bad ids,
 * non-UTF-8 strings, payloads that are not one JSON object or too large,
 * and struct_size too small, and checks that each returns its named
 * CHAT_ERR_* code with chat_last_error() / chat_last_error_code() set by
 * that very call. Run by tests/c_abi.rs; prints one line per failed check
 * and a summary, exits 0 only if every check passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <unistd.h>

#include "chat.h"
#include "check.h"

/* Leaves a known last error from a function other than `fname`, so that a
 * check can tell that the call under test set its own. */
static void set_marker(const char *fname)
{
    if (strcmp(fname, "chat_server_port") == 0) {
        chat_server_wakeup(NULL);
    } else {
        chat_server_port(NULL);
    }
}

/* An int-returning call that must fail with `code`. */
#define EXPECT_ERR(fname, call, code)                                                                    \
    do {                                                                                                 \
        int got_;                                                                                        \
        set_marker(fname);                                                                               \
        got_ = (call);                                                                                   \
        check(__LINE__, fname, #call, got_, code, code);                                                 \
    } while (0)

/* A call that must return `value` and set the last error to `code`. */
#define EXPECT_VALUE_ERR(fname, call, value, code)                                                       \
    do {                                                                                                 \
        long got_;                                                                                       \
        set_marker(fname);                                                                               \
        got_ = (long)(call);                                                                             \
        check(__LINE__, fname, #call, got_, value, code);                                                \
    } while (0)

/* A void call that must set the last error to `code`. */
#define EXPECT_VOID_ERR(fname, call, code)                                                               \
    do {                                                                                                 \
        set_marker(fname);                                                                               \
        call;                                                                                            \
        check(__LINE__, fname, #call, 0, 0, code);                                                       \
    } while (0)

/* chat_server_new must return NULL and set `code`. */
#define EXPECT_NEW_ERR(cfg, code)                                                                        \
    do {                                                                                                 \
        ChatServer *s_;                                                                                  \
        set_marker("chat_server_new");                                                                   \
        s_ = chat_server_new(cfg);                                                                       \
        check(__LINE__, "chat_server_new", "chat_server_new(" #cfg ") with " #code, s_ != NULL, 0, code); \
        chat_server_free(s_);                                                                            \
    } while (0)

#define EXPECT_OK(call)                                                                                  \
    do {                                                                                                 \
        int got_ = (call);                                                                               \
        check(__LINE__, "", #call, got_, CHAT_OK, CHAT_OK);                                              \
    } while (0)

static ChatConfig loopback(const char *addr)
{
    ChatConfig cfg;
    chat_config_default(&cfg);
    cfg.listen_addr = addr;
    return cfg;
}

static void config_and_new(void)
{
    ChatConfig cfg;
    EXPECT_VOID_ERR("chat_config_default", chat_config_default(NULL), CHAT_ERR_NULL);
    EXPECT_NEW_ERR(NULL, CHAT_ERR_NULL);

    cfg = loopback("127.0.0.1:0");
    cfg.struct_size = 0;
    EXPECT_NEW_ERR(&cfg, CHAT_ERR_INVALID);
    cfg.struct_size = 4;
    EXPECT_NEW_ERR(&cfg, CHAT_ERR_INVALID);

    cfg = loopback(NULL);
    EXPECT_NEW_ERR(&cfg, CHAT_ERR_NULL);
    cfg = loopback("\xff\xfe:1");
    EXPECT_NEW_ERR(&cfg, CHAT_ERR_UTF8);
    cfg = loopback("not an address");
    EXPECT_NEW_ERR(&cfg, CHAT_ERR_ADDR);
    cfg = loopback("127.0.0.1");
    EXPECT_NEW_ERR(&cfg, CHAT_ERR_ADDR);
    cfg = loopback("localhost:0");
    EXPECT_NEW_ERR(&cfg, CHAT_ERR_ADDR);

    cfg = loopback("127.0.0.1:0");
    cfg.max_frame_bytes = 0;
    EXPECT_NEW_ERR(&cfg, CHAT_ERR_CONFIG);
    cfg = loopback("127.0.0.1:0");
    cfg.max_clients = 0;
    EXPECT_NEW_ERR(&cfg, CHAT_ERR_CONFIG);
    cfg = loopback("127.0.0.1:0");
    cfg.max_events = 0;
    EXPECT_NEW_ERR(&cfg, CHAT_ERR_CONFIG);
    cfg = loopback("127.0.0.1:0");
    cfg.max_queue_bytes = 1;
    EXPECT_NEW_ERR(&cfg, CHAT_ERR_CONFIG);

    /* chat_config_init writes only as far as the host's struct reaches: a
       host built against the version-1 header (ending at max_events) gets
       no overrun. */
    {
        unsigned char buf[sizeof(ChatConfig) + 16];
        uint32_t v1 = (uint32_t)(offsetof(ChatConfig, max_events) + sizeof(uint32_t));
        size_t i;
        int untouched = 1;
        memset(buf, 0xAA, sizeof buf);
        check(__LINE__, "chat_config_init", "chat_config_init(v1)",
              chat_config_init((ChatConfig *)(void *)buf, v1), CHAT_OK, CHAT_OK);
        for (i = v1; i < sizeof buf; i++) {
            if (buf[i] != 0xAA) {
                untouched = 0;
            }
        }
        check(__LINE__, "chat_config_init", "bytes past struct_size untouched", untouched, 1, CHAT_OK);
        check(__LINE__, "chat_config_init", "struct_size recorded",
              (long)((ChatConfig *)(void *)buf)->struct_size, (long)v1, CHAT_OK);
        check(__LINE__, "chat_config_init", "chat_config_init(NULL)",
              chat_config_init(NULL, sizeof(ChatConfig)), CHAT_ERR_NULL, CHAT_ERR_NULL);
        check(__LINE__, "chat_config_init", "chat_config_init(too small)",
              chat_config_init((ChatConfig *)(void *)buf, 4), CHAT_ERR_INVALID, CHAT_ERR_INVALID);
    }
}

/* A second server on a port that a first one listens on cannot bind. */
static void port_in_use(void)
{
    ChatConfig cfg = loopback("127.0.0.1:0");
    ChatServer *first = chat_server_new(&cfg);
    char addr[64];
    checks++;
    if (first == NULL) {
        fail(__LINE__, "chat_server_new(127.0.0.1:0)", chat_last_error());
        return;
    }
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)chat_server_port(first));
    cfg = loopback(addr);
    EXPECT_NEW_ERR(&cfg, CHAT_ERR_BIND);
    chat_server_free(first);
}

/* With every descriptor below FD_SETSIZE taken, the listener lands above
 * it: chat_server_new must refuse rather than hand select() a bad fd. */
static void listener_above_fd_setsize(void)
{
    struct rlimit old;
    struct rlimit raised;
    int *held;
    int n = 0;
    ChatConfig cfg = loopback("127.0.0.1:0");
    if (getrlimit(RLIMIT_NOFILE, &old) != 0 || old.rlim_max < FD_SETSIZE + 64) {
        printf("skip: RLIMIT_NOFILE hard limit too low to test CHAT_ERR_FD_SETSIZE\n");
        return;
    }
    raised = old;
    raised.rlim_cur = FD_SETSIZE + 64;
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
        printf("skip: cannot raise RLIMIT_NOFILE\n");
        return;
    }
    held = calloc(FD_SETSIZE, sizeof *held);
    while (held != NULL && n < FD_SETSIZE) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            break;
        }
        held[n++] = fd;
        if (fd >= FD_SETSIZE - 1) {
            break;
        }
    }
    EXPECT_NEW_ERR(&cfg, CHAT_ERR_FD_SETSIZE);
    while (n > 0) {
        close(held[--n]);
    }
    free(held);
    setrlimit(RLIMIT_NOFILE, &old);
}

static void pump_calls(ChatServer *s)
{
    ChatEvent ev;
    ChatPollFd fds[16];
    int n;

    EXPECT_VALUE_ERR("chat_server_port", chat_server_port(NULL), 0, CHAT_ERR_NULL);
    EXPECT_ERR("chat_server_poll_once", chat_server_poll_once(NULL, 0), CHAT_ERR_NULL);

    memset(&ev, 0x5a, sizeof ev);
    ev.struct_size = sizeof ev;
    EXPECT_ERR("chat_server_next_event", chat_server_next_event(NULL, &ev), CHAT_ERR_NULL);
    checks++;
    if (ev.kind != 0 || ev.client != 0 || ev.peer != NULL) {
        fail(__LINE__, "chat_server_next_event(NULL, &ev)", "did not zero *out first");
    }
    EXPECT_ERR("chat_server_next_event", chat_server_next_event(s, NULL), CHAT_ERR_NULL);
    memset(&ev, 0x5a, sizeof ev);
    ev.struct_size = sizeof ev;
    EXPECT_OK(chat_server_next_event(s, &ev)); /* 0: nothing waits */
    checks++;
    if (ev.kind != 0 || ev.nick != NULL || ev.payload_len != 0) {
        fail(__LINE__, "chat_server_next_event(s, &ev)", "did not zero *out");
    }

    EXPECT_ERR("chat_server_fds", chat_server_fds(NULL, fds, 16), CHAT_ERR_NULL);
    EXPECT_ERR("chat_server_fds", chat_server_fds(s, NULL, 16), CHAT_ERR_NULL);
    n = chat_server_fds(s, NULL, 0);
    checks++;
    if (n < 2) {
        fail(__LINE__, "chat_server_fds(s, NULL, 0)", "wants fewer than 2 descriptors");
    }
    EXPECT_VALUE_ERR("chat_server_timeout_ms", chat_server_timeout_ms(NULL), -1, CHAT_ERR_NULL);
    EXPECT_ERR("chat_server_wakeup", chat_server_wakeup(NULL), CHAT_ERR_NULL);
    EXPECT_OK(chat_server_wakeup(s));
}

static void host_calls(ChatServer *s)
{
    static const char obj[] = "{\"type\":\"note\"}";
    const uint8_t *json = (const uint8_t *)obj;
    size_t len = sizeof obj - 1;
    static const char *not_objects[] = {"[1]", "\"text\"", "42", "null", "not json", "{\"a\":1} {\"b\":2}",
                                        "{\"a\":", "{\"a\":\"\xff\"}", ""};
    size_t big_len = 65536 + 1;
    char *big = malloc(big_len + 1);
    size_t i;

    EXPECT_ERR("chat_send", chat_send(NULL, 1, json, len), CHAT_ERR_NULL);
    EXPECT_ERR("chat_send", chat_send(s, 1, NULL, len), CHAT_ERR_NULL);
    EXPECT_ERR("chat_send", chat_send(s, 12345, json, len), CHAT_ERR_UNKNOWN_CLIENT);
    EXPECT_ERR("chat_send", chat_send(s, 0, json, len), CHAT_ERR_UNKNOWN_CLIENT);
    for (i = 0; i < sizeof not_objects / sizeof not_objects[0]; i++) {
        const uint8_t *p = (const uint8_t *)not_objects[i];
        size_t n = strlen(not_objects[i]);
        int before = failures;
        EXPECT_ERR("chat_send", chat_send(s, 12345, p, n), CHAT_ERR_NOT_JSON_OBJECT);
        EXPECT_ERR("chat_broadcast", chat_broadcast(s, p, n), CHAT_ERR_NOT_JSON_OBJECT);
        if (failures != before) {
            printf("  (payload %lu: \"%s\")\n", (unsigned long)i, not_objects[i]);
        }
    }
    if (big != NULL) {
        memset(big, 'x', big_len);
        memcpy(big, "{\"a\":\"", 6);
        memcpy(big + big_len - 2, "\"}", 2);
        big[big_len] = '\0';
        EXPECT_ERR("chat_send", chat_send(s, 12345, (const uint8_t *)big, big_len), CHAT_ERR_TOO_LARGE);
        EXPECT_ERR("chat_broadcast", chat_broadcast(s, (const uint8_t *)big, big_len), CHAT_ERR_TOO_LARGE);
        free(big);
    }

    EXPECT_ERR("chat_broadcast", chat_broadcast(NULL, json, len), CHAT_ERR_NULL);
    EXPECT_ERR("chat_broadcast", chat_broadcast(s, NULL, len), CHAT_ERR_NULL);
    EXPECT_OK(chat_broadcast(s, json, len)); /* 0 clients */

    EXPECT_ERR("chat_kick", chat_kick(NULL, 1, NULL), CHAT_ERR_NULL);
    EXPECT_ERR("chat_kick", chat_kick(s, 12345, NULL), CHAT_ERR_UNKNOWN_CLIENT);
    EXPECT_ERR("chat_kick", chat_kick(s, 12345, "bye"), CHAT_ERR_UNKNOWN_CLIENT);
    EXPECT_ERR("chat_kick", chat_kick(s, 12345, "\xff\xfe"), CHAT_ERR_UTF8);
}

static void stats_calls(ChatServer *s)
{
    ChatStats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    EXPECT_ERR("chat_server_stats", chat_server_stats(NULL, &st), CHAT_ERR_NULL);
    EXPECT_ERR("chat_server_stats", chat_server_stats(s, NULL), CHAT_ERR_NULL);
    st.struct_size = 0;
    EXPECT_ERR("chat_server_stats", chat_server_stats(s, &st), CHAT_ERR_INVALID);
    st.struct_size = 8;
    EXPECT_ERR("chat_server_stats", chat_server_stats(s, &st), CHAT_ERR_INVALID);
    st.struct_size = sizeof st;
    EXPECT_OK(chat_server_stats(s, &st));
}

/* Every CHAT_ERR_* of the header (tests/header.rs checks none is missing). */
static const struct {
    const char *name;
    int code;
} error_codes[] = {
    {"CHAT_ERR_NULL", CHAT_ERR_NULL},
    {"CHAT_ERR_INVALID", CHAT_ERR_INVALID},
    {"CHAT_ERR_UTF8", CHAT_ERR_UTF8},
    {"CHAT_ERR_NOT_JSON_OBJECT", CHAT_ERR_NOT_JSON_OBJECT},
    {"CHAT_ERR_TOO_LARGE", CHAT_ERR_TOO_LARGE},
    {"CHAT_ERR_UNKNOWN_CLIENT", CHAT_ERR_UNKNOWN_CLIENT},
    {"CHAT_ERR_ADDR", CHAT_ERR_ADDR},
    {"CHAT_ERR_BIND", CHAT_ERR_BIND},
    {"CHAT_ERR_FD_SETSIZE", CHAT_ERR_FD_SETSIZE},
    {"CHAT_ERR_CONFIG", CHAT_ERR_CONFIG},
    {"CHAT_ERR_IO", CHAT_ERR_IO},
    {"CHAT_ERR_SHUTTING_DOWN", CHAT_ERR_SHUTTING_DOWN},
    {"CHAT_ERR_PANIC", CHAT_ERR_PANIC},
    {"CHAT_ERR_UNKNOWN_ROOM", CHAT_ERR_UNKNOWN_ROOM},
    {"CHAT_ERR_NOT_IN_ROOM", CHAT_ERR_NOT_IN_ROOM},
    {"CHAT_ERR_UNKNOWN_TICKET", CHAT_ERR_UNKNOWN_TICKET},
    {"CHAT_ERR_NOT_PENDING", CHAT_ERR_NOT_PENDING},
    {"CHAT_ERR_TLS", CHAT_ERR_TLS},
};
#define ERROR_CODE_COUNT (sizeof error_codes / sizeof error_codes[0])

static void error_texts(void)
{
    const char *unknown = "unknown error code";
    int lowest = 0;
    size_t i;
    size_t j;
    checks++;
    if (strcmp(chat_strerror(CHAT_OK), "ok") != 0) {
        fail(__LINE__, "chat_strerror(CHAT_OK)", "is not \"ok\"");
    }
    for (i = 0; i < ERROR_CODE_COUNT; i++) {
        const char *t = chat_strerror(error_codes[i].code);
        checks++;
        if (error_codes[i].code < lowest) {
            lowest = error_codes[i].code;
        }
        if (error_codes[i].code >= 0) {
            fail(__LINE__, error_codes[i].name, "is not negative");
        }
        if (t == NULL || t[0] == '\0' || strcmp(t, unknown) == 0) {
            fail(__LINE__, error_codes[i].name, "has no text in chat_strerror");
            continue;
        }
        for (j = 0; j < i; j++) {
            if (error_codes[j].code == error_codes[i].code) {
                fail(__LINE__, error_codes[i].name, "reuses another code's value");
            }
            if (strcmp(chat_strerror(error_codes[j].code), t) == 0) {
                fail(__LINE__, error_codes[i].name, "shares its text with another code");
            }
        }
    }
    checks++;
    if (strcmp(chat_strerror(lowest - 1), unknown) != 0) {
        fail(__LINE__, "chat_strerror(lowest - 1)", "is known: add the new code to error_codes[]");
    }
    checks++;
    if (strcmp(chat_strerror(1), unknown) != 0 || strcmp(chat_strerror(INT_MIN), unknown) != 0 ||
        strcmp(chat_strerror(INT_MAX), unknown) != 0) {
        fail(__LINE__, "chat_strerror", "an unknown code is not \"unknown error code\"");
    }
    checks++;
    if (strcmp(chat_version(), CHAT_VERSION) != 0) {
        fail(__LINE__, "chat_version()", "differs from CHAT_VERSION");
    }
}

int main(void)
{
    ChatConfig cfg = loopback("127.0.0.1:0");
    ChatServer *s;
    int done = 0;
    int rounds;

    config_and_new();
    port_in_use();
    listener_above_fd_setsize();

    s = chat_server_new(&cfg);
    if (s == NULL) {
        printf("FAIL: chat_server_new: %s\n", chat_last_error());
        return 1;
    }
    pump_calls(s);
    host_calls(s);
    stats_calls(s);

    EXPECT_ERR("chat_server_shutdown", chat_server_shutdown(NULL, 0), CHAT_ERR_NULL);
    EXPECT_ERR("chat_server_shutdown", chat_server_shutdown(s, -1), CHAT_ERR_INVALID);
    for (rounds = 0; rounds < 1000 && done != 1; rounds++) {
        done = chat_server_shutdown(s, 0);
        if (done == 0) {
            chat_server_poll_once(s, 10);
        }
    }
    checks++;
    if (done != 1) {
        fail(__LINE__, "chat_server_shutdown(s, 0)", "never finished on an idle server");
    }
    chat_server_free(s);
    chat_server_free(NULL);

    error_texts();

    return summary("misuse");
}
