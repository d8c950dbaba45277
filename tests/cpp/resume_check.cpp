// Checks of the protocol 1.2 part of bindings/cpp/chat.hpp: notice and
// notice_all (and their errors), and the renamed, parked and resumed
// events, driven by a loopback client of its own that asks for a resumable
// session, drops it, resumes it and renames itself. Built and run by
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
#include <optional>
#include <string>

namespace {

using check::expect;
using check::failures;
using check::loopback;

constexpr int kRounds = 200;

// A blocking loopback client speaking the framed protocol, reading while
// the server is pumped.
class Client {
public:
    explicit Client(std::uint16_t port) {
        fd_ = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd_ < 0 || connect(fd_, reinterpret_cast<const sockaddr *>(&addr), sizeof addr) != 0) {
            std::perror("connect");
            std::exit(1);
        }
    }
    ~Client() { close(); }
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;

    void close() {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

    void send(const std::string &json) {
        const std::uint32_t n = htonl(static_cast<std::uint32_t>(json.size()));
        std::string frame(reinterpret_cast<const char *>(&n), 4);
        frame += json;
        if (::send(fd_, frame.data(), frame.size(), 0) != static_cast<ssize_t>(frame.size())) {
            std::perror("send");
            std::exit(1);
        }
    }

    // The next frame, pumping `s` while it is not here yet.
    std::string recv(chat::Server &s) {
        std::string head = read(s, 4);
        const auto *b = reinterpret_cast<const unsigned char *>(head.data());
        const std::size_t len = (std::size_t{b[0]} << 24) | (std::size_t{b[1]} << 16) | (std::size_t{b[2]} << 8) | b[3];
        return read(s, len);
    }

private:
    std::string read(chat::Server &s, std::size_t len) {
        std::string out;
        for (int i = 0; out.size() < len && i < kRounds; ++i) {
            s.poll(50);
            char buf[4096];
            const std::size_t want = std::min(sizeof buf, len - out.size());
            const ssize_t n = ::recv(fd_, buf, want, MSG_DONTWAIT);
            if (n > 0) {
                out.append(buf, static_cast<std::size_t>(n));
            } else if (n == 0) {
                break;
            }
        }
        if (out.size() < len) {
            std::fprintf(stderr, "FAILED: the server did not send a whole frame\n");
            std::exit(1);
        }
        return out;
    }

    int fd_ = -1;
};

// Pumps until an event of `kind` arrives (skipping others). Its views are
// copied out: they die with the next call on the server.
struct Seen {
    std::uint64_t client = 0;
    std::string nick;
    std::string old_nick;
    std::string reason;
    std::uint64_t previous = 0;
    std::uint64_t user_data = 0;
};

Seen wait_event(chat::Server &s, chat::Event::Kind kind) {
    for (int i = 0; i < kRounds; ++i) {
        while (std::optional<chat::Event> ev = s.next_event()) {
            if (ev->kind == kind) {
                return Seen{ev->client,          std::string(ev->nick), std::string(ev->old_nick),
                            std::string(ev->reason), ev->previous,      ev->user_data};
            }
        }
        s.poll(50);
    }
    std::fprintf(stderr, "FAILED: no %s event\n", chat::to_string(kind));
    std::exit(1);
}

// The string value of "key":"..." in a frame.
std::string field(const std::string &json, const std::string &key) {
    const std::string pattern = "\"" + key + "\":\"";
    const std::size_t at = json.find(pattern);
    if (at == std::string::npos) {
        return {};
    }
    const std::size_t start = at + pattern.size();
    return json.substr(start, json.find('"', start) - start);
}

} // namespace

int main() {
    chat::Server s(loopback());
    check::expect_error(CHAT_ERR_UNKNOWN_CLIENT, "notice to an unknown client", [&] { s.notice(42, "x"); },
                        "chat_notice");
    check::expect_error(CHAT_ERR_UTF8, "notice_all of bytes that are not UTF-8",
                        [&] { s.notice_all(std::string("\xff")); }, "chat_notice_all");
    expect(s.notice_all("nobody") == 0, "notice_all with nobody online reaches 0");

    auto alice = std::make_optional<Client>(s.port());
    alice->send(R"({"type":"hello","nick":"alice","resumable":true})");
    const std::string welcome = alice->recv(s);
    const std::string token = field(welcome, "session");
    expect(!token.empty(), "the welcome carries a session");
    const Seen reg = wait_event(s, chat::Event::Kind::registered);
    s.set_user_data(reg.client, 9);
    s.notice(reg.client, "hi alice");
    expect(s.notice_all("hi all") == 1, "notice_all reaches the one client");
    expect(alice->recv(s) == R"({"type":"notice","text":"hi alice"})", "notice reaches its client");
    expect(alice->recv(s) == R"({"type":"notice","text":"hi all"})", "notice_all reaches it too");

    alice.reset();
    const Seen parked = wait_event(s, chat::Event::Kind::parked);
    expect(parked.client == reg.client && parked.reason == "disconnect", "parked: its id and reason");
    expect(std::string(chat::to_string(chat::Event::Kind::parked)) == "parked", "to_string(parked)");
    s.notice(parked.client, "while away");
    expect(s.stats().parked == 1, "stats count the parked session");

    Client again(s.port());
    again.send(R"({"type":"hello","nick":"alice","resume":{"session":")" + token + R"(","received":2}})");
    expect(again.recv(s).find(R"("resumed":true)") != std::string::npos, "the resume is welcomed");
    expect(again.recv(s) == R"({"type":"notice","text":"while away"})", "what waited is replayed");
    const Seen resumed = wait_event(s, chat::Event::Kind::resumed);
    expect(resumed.previous == reg.client && resumed.client != reg.client, "resumed: the new id and the old");
    expect(resumed.nick == "alice" && resumed.user_data == 9, "resumed: nick and user data moved");
    check::expect_error(CHAT_ERR_UNKNOWN_CLIENT, "the old id is gone", [&] { s.notice(reg.client, "x"); });

    again.send(R"({"type":"nick","nick":"alicia"})");
    const Seen renamed = wait_event(s, chat::Event::Kind::renamed);
    expect(renamed.client == resumed.client && renamed.nick == "alicia" && renamed.old_nick == "alice",
           "renamed: both nicks");

    if (failures == 0) {
        std::printf("ok\n");
    }
    return failures == 0 ? 0 : 1;
}
