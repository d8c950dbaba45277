/*
 * client.h: what the C tests that need real clients share (misuse_rooms.c,
 * misuse_lookup.c): a blocking loopback TCP client of a server, framed
 * JSON out, and a wait for an event of one kind. Header-only: each program
 * is one translation unit; include it after check.h.
 */
#ifndef CHAT_TESTS_CLIENT_H
#define CHAT_TESTS_CLIENT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "chat.h"

/* How many poll rounds of POLL_MS a wait for an event may take. */
#define POLL_MS 50
#define MAX_ROUNDS 200

/* A blocking TCP client of `s`. */
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

/* One frame: a 4-byte big-endian length, then the JSON. */
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

/* Pumps `s` until an event of `kind` arrives (skipping others); returns it
 * with its pointers cleared (they die with the next call). */
static ChatEvent wait_event(ChatServer *s, uint32_t kind)
{
    ChatEvent ev;
    int rounds;
    memset(&ev, 0, sizeof ev);
    ev.struct_size = sizeof ev;
    for (rounds = 0; rounds < MAX_ROUNDS; rounds++) {
        while (chat_server_next_event(s, &ev) == 1) {
            if (ev.kind == kind) {
                ev.peer = ev.nick = ev.reason = ev.room = ev.token = NULL;
                ev.payload = NULL;
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

/* Connects and registers `nick` (on a server without approval). */
static uint64_t registered(ChatServer *s, const char *nick, int *fd)
{
    char hello[128];
    *fd = connect_client(s);
    snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"nick\":\"%s\"}", nick);
    send_frame(*fd, hello);
    return wait_event(s, CHAT_EVENT_REGISTERED).client;
}

#endif
