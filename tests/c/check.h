/*
 * check.h: what tests/c/misuse.c and tests/c/misuse_rooms.c share: counted
 * checks, one line per failure, and the check that a call returned what it
 * should and, when that is an error, set chat_last_error_code() and a
 * chat_last_error() message of its own. Header-only: each program is one
 * translation unit.
 */
#ifndef CHAT_TESTS_CHECK_H
#define CHAT_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

#include "chat.h"

static int checks = 0;
static int failures = 0;

static void fail(int line, const char *what, const char *why)
{
    failures++;
    printf("FAIL line %d: %s: %s\n", line, what, why);
}

/* The call just made returned `got`; it should be `want`, and when
 * `want_code` is an error, the last error must be that code and a message
 * from fname. */
static void check(int line, const char *fname, const char *expr, long got, long want, int want_code)
{
    const char *msg = chat_last_error();
    char why[512];
    checks++;
    if (got != want) {
        snprintf(why, sizeof why, "returned %ld, want %ld (last error: %s)", got, want, msg ? msg : "NULL");
        fail(line, expr, why);
        return;
    }
    if (want_code == CHAT_OK) {
        return;
    }
    if (chat_last_error_code() != want_code) {
        snprintf(why, sizeof why, "chat_last_error_code() = %d, want %d", chat_last_error_code(), want_code);
        fail(line, expr, why);
    }
    if (msg == NULL || strncmp(msg, fname, strlen(fname)) != 0 || msg[strlen(fname)] != ':') {
        snprintf(why, sizeof why, "chat_last_error() = \"%s\", want a message from %s", msg ? msg : "NULL",
                 fname);
        fail(line, expr, why);
    }
}

/* Prints the summary line; the program's exit status. */
static int summary(const char *program)
{
    printf("%s: %d checks, %d failed\n", program, checks, failures);
    return failures == 0 ? 0 : 1;
}

#endif
