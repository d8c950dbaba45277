// Checks of the lookups and the log callback of bindings/cpp/chat.hpp, with
// real loopback clients: find_client in any case, nick, peer, local_addr,
// ws_addr; set_log with lambdas (records reach the lambda of the server
// that made them, never another's, none after it is unset, a moved Server
// keeps its callback, a throwing one is contained). Built and run by
// tests/cpp_host.rs; prints "ok" and exits 0 when every check passes.

#include "chat.hpp"
#include "check.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using check::expect;
using check::failures;
using check::loopback;

// A blocking loopback client of `s`.
int connect_to(const chat::Server &s) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(s.port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr *>(&addr), sizeof addr) != 0) {
        std::perror("connect");
        std::exit(EXIT_FAILURE);
    }
    return fd;
}

void send_frame(int fd, const std::string &json) {
    const std::uint32_t n = htonl(static_cast<std::uint32_t>(json.size()));
    std::string frame(reinterpret_cast<const char *>(&n), 4);
    frame += json;
    if (send(fd, frame.data(), frame.size(), 0) != static_cast<ssize_t>(frame.size())) {
        std::perror("send");
        std::exit(EXIT_FAILURE);
    }
}

// Pumps until an event of `kind` comes; returns its client.
std::uint64_t wait_for(chat::Server &s, chat::Event::Kind kind) {
    for (int round = 0; round < 200; round++) {
        while (auto ev = s.next_event()) {
            if (ev->kind == kind) {
                return ev->client;
            }
        }
        s.poll(50);
    }
    std::fprintf(stderr, "FAILED: no %s event\n", chat::to_string(kind));
    std::exit(EXIT_FAILURE);
}

// What one lambda saw.
struct Seen {
    std::vector<std::pair<int, std::string>> records;
    int connected() const {
        int n = 0;
        for (const auto &r : records) {
            n += r.second.find(" connected from ") != std::string::npos;
        }
        return n;
    }
};

chat::LogFn collect(Seen &seen) {
    return [&seen](int level, std::string_view message) { seen.records.emplace_back(level, std::string(message)); };
}

void lookups() {
    chat::Server s(loopback());
    expect(s.local_addr() == "127.0.0.1:" + std::to_string(s.port()), "local_addr is the bound address");
    expect(!s.ws_addr().has_value(), "no WebSocket listener");

    int alice = connect_to(s);
    send_frame(alice, R"({"type":"hello","nick":"Alice"})");
    const std::uint64_t id = wait_for(s, chat::Event::Kind::registered);
    expect(s.find_client("ALICE") == id && s.find_client("alice") == id, "find_client in any case");
    expect(!s.find_client("bob").has_value(), "find_client of nobody is nullopt");
    expect(s.nick(id) == std::optional<std::string>("Alice"), "nick as registered");
    expect(s.peer(id).rfind("127.0.0.1:", 0) == 0, "peer is a loopback address");
    check::expect_error(CHAT_ERR_UNKNOWN_CLIENT, "nick of an unknown id", [&] { (void)s.nick(999); },
                        "chat_client_peer");
    check::expect_error(CHAT_ERR_UNKNOWN_CLIENT, "peer of an unknown id", [&] { (void)s.peer(999); },
                        "chat_client_peer");
    check::expect_error(CHAT_ERR_UTF8, "find_client of bad UTF-8", [&] { (void)s.find_client("\xff"); },
                        "chat_find_client");

    int quiet = connect_to(s);
    const std::uint64_t quiet_id = wait_for(s, chat::Event::Kind::connected);
    expect(!s.nick(quiet_id).has_value(), "no nick before hello");

    close(alice);
    expect(wait_for(s, chat::Event::Kind::disconnected) == id, "alice left");
    expect(!s.find_client("alice").has_value(), "a nick is free once its user left");
    close(quiet);

    chat::Server moved(std::move(s));
    check::expect_error(CHAT_ERR_NULL, "find_client on a moved-from server", [&] { (void)s.find_client("a"); });
    check::expect_error(CHAT_ERR_NULL, "local_addr on a moved-from server", [&] { (void)s.local_addr(); });
    check::expect_error(CHAT_ERR_NULL, "ws_addr on a moved-from server", [&] { (void)s.ws_addr(); });
}

void logging() {
    chat::Server a(loopback());
    chat::Server b(loopback());
    Seen seen_a;
    Seen seen_b;
    a.set_log(CHAT_LOG_DEBUG, collect(seen_a));
    b.set_log(CHAT_LOG_DEBUG, collect(seen_b));
    expect(seen_a.records.size() == 1 && seen_a.records[0].first == CHAT_LOG_INFO &&
               seen_a.records[0].second.find(a.local_addr()) != std::string::npos,
           "the first record says where the server listens");

    int to_b = connect_to(b);
    (void)wait_for(b, chat::Event::Kind::connected);
    a.poll(0);
    expect(seen_b.connected() == 1 && seen_a.connected() == 0, "a connection to b is b's record only");

    // A moved Server keeps its callback; the callback's address does not move.
    chat::Server moved(std::move(a));
    int to_a = connect_to(moved);
    (void)wait_for(moved, chat::Event::Kind::connected);
    expect(seen_a.connected() == 1, "a moved server still logs to its lambda");

    // An exception from the callback stays on this side.
    moved.set_log(CHAT_LOG_DEBUG, [](int, std::string_view) { throw std::runtime_error("boom"); });
    close(to_a);
    (void)wait_for(moved, chat::Event::Kind::disconnected);

    const std::size_t before = seen_a.records.size() + seen_b.records.size();
    moved.set_log(CHAT_LOG_OFF, collect(seen_a));
    b.set_log(CHAT_LOG_TRACE, nullptr);
    close(to_b);
    (void)wait_for(b, chat::Event::Kind::disconnected);
    int again = connect_to(moved);
    (void)wait_for(moved, chat::Event::Kind::connected);
    expect(seen_a.records.size() + seen_b.records.size() == before, "nothing after set_log is unset");
    close(again);

    check::expect_error(CHAT_ERR_INVALID, "set_log at level 6", [&] { b.set_log(6, collect(seen_b)); },
                        "chat_server_set_log");
}

} // namespace

int main() {
    lookups();
    logging();
    if (failures != 0) {
        return EXIT_FAILURE;
    }
    std::puts("ok");
    return EXIT_SUCCESS;
}
