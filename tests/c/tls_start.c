/*
 * TLS from C: a server made from the PEM files named on the command line.
 *
 *   tls_start CERT KEY
 *
 * If chat_server_new fails, prints `error CODE NAME: MESSAGE` (the code,
 * chat_strerror's text and chat_last_error()) and exits 1. Otherwise it
 * sends plaintext to its own TLS listener, pumps until chat_server_stats
 * counts the failed handshake (at most 10 s), prints `failed_handshakes N
 * accepted N clients N` and exits 0.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chat.h"

/* The whole file at `path`, and its length; exits 2 if unreadable. */
static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0;
    size_t n = 0;
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    for (;;) {
        size_t got;
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            if (buf == NULL) {
                exit(2);
            }
        }
        got = fread(buf + n, 1, cap - n, f);
        if (got == 0) {
            break;
        }
        n += got;
    }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    ChatConfig cfg;
    ChatServer *s;
    ChatStats st;
    size_t cert_len;
    size_t key_len;
    unsigned char *cert;
    unsigned char *key;
    struct sockaddr_in addr;
    int fd;
    int round;
    const char plaintext[] = "\x00\x00\x00\x02{}";

    if (argc != 3) {
        fprintf(stderr, "usage: tls_start CERT KEY\n");
        return 2;
    }
    cert = read_file(argv[1], &cert_len);
    key = read_file(argv[2], &key_len);
    chat_config_default(&cfg);
    cfg.listen_addr = "127.0.0.1:0";
    cfg.tls_cert_pem = cert;
    cfg.tls_cert_len = cert_len;
    cfg.tls_key_pem = key;
    cfg.tls_key_len = key_len;
    s = chat_server_new(&cfg);
    /* The library read the PEM bytes during chat_server_new only. */
    free(cert);
    free(key);
    if (s == NULL) {
        int code = chat_last_error_code();
        printf("error %d %s: %s\n", code, chat_strerror(code), chat_last_error());
        return 1;
    }

    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(chat_server_port(s));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("connect");
        return 2;
    }
    if (write(fd, plaintext, sizeof plaintext - 1) != (ssize_t)(sizeof plaintext - 1)) {
        perror("write");
        return 2;
    }
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    for (round = 0; round < 200; round++) {
        if (chat_server_poll_once(s, 50) < 0 || chat_server_stats(s, &st) != CHAT_OK) {
            printf("error %d: %s\n", chat_last_error_code(), chat_last_error());
            return 1;
        }
        if (st.failed_handshakes > 0) {
            break;
        }
    }
    printf("failed_handshakes %llu accepted %llu clients %llu\n", (unsigned long long)st.failed_handshakes,
           (unsigned long long)st.accepted, (unsigned long long)st.clients);
    close(fd);
    while (chat_server_shutdown(s, 1000) == 0) {
        chat_server_poll_once(s, 100);
    }
    chat_server_free(s);
    return 0;
}
