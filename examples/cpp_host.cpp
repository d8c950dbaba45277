// cpp_host: a C++ program that embeds the chat server in its OWN select()
// loop, next to its operator console on stdin. This is the shape of an
// existing application adding chat: the application keeps its loop, asks the
// server which descriptors to watch (Server::fds) and for how long it may
// wait (Server::timeout_ms), and calls Server::poll(0) after each wait.
//
//   cpp_host [LISTEN_ADDR]          (default 127.0.0.1:7878)
//
// stdout: "listening on ADDR", then one line per event:
//   connected ID PEER | registered ID NICK | message ID NICK JSON |
//   disconnected ID NICK REASON   (NICK is "-" for a client that never
//   registered), and the answers to console commands.
// stdin (operator console):
//   /say TEXT   broadcast {"type":"all","from":"host","text":TEXT}
//   /kick NICK  disconnect that user (reason "kicked")
//   /stats      print the server's counters
// stdin EOF, SIGINT or SIGTERM: graceful shutdown, "stopped", exit 0.
//
// Build (after `cargo build`), one command:
//   g++ -std=c++17 -Iinclude -Ibindings/cpp examples/cpp_host.cpp
//       target/debug/libchat.a -lpthread -ldl -lm -o cpp_host

#include "chat.hpp"

#include <sys/select.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <string_view>

namespace {

// How long shutdown may spend flushing goodbyes before closing regardless.
constexpr int SHUTDOWN_DEADLINE_MS = 2000;

volatile std::sig_atomic_t g_stop = 0;
// A lock-free atomic may be read from a signal handler; the handler uses it
// to interrupt the select() below through the server's wake pipe, which
// closes the race between checking g_stop and blocking in select().
std::atomic<chat::Server *> g_server{nullptr};
static_assert(std::atomic<chat::Server *>::is_always_lock_free, "the signal handler reads g_server");

// Publishes the server to the signal handler for as long as it lives.
struct SignalTarget {
    explicit SignalTarget(chat::Server &s) { g_server.store(&s); }
    ~SignalTarget() { g_server.store(nullptr); }
    SignalTarget(const SignalTarget &) = delete;
    SignalTarget &operator=(const SignalTarget &) = delete;
};

extern "C" void on_signal(int) {
    g_stop = 1;
    if (chat::Server *s = g_server.load()) {
        s->wakeup();
    }
}

void install_signal_handlers() {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    // No SA_RESTART: a signal should end a blocked select() with EINTR.
    sa.sa_flags = 0;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

void out_line(const std::string &line) {
    // stdout is usually a pipe: flush each line so readers see it now.
    std::cout << line << std::endl;
}

// Appends s as a JSON string literal (quotes included). Bytes >= 0x80 pass
// through: the library rejects text that is not UTF-8.
void append_json_string(std::string &out, std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    out += '"';
    for (char ch : s) {
        unsigned char c = static_cast<unsigned char>(ch);
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 0xf];
            } else {
                out += ch;
            }
        }
    }
    out += '"';
}

std::string field_or_dash(std::string_view v) { return v.empty() ? std::string("-") : std::string(v); }

class Host {
public:
    explicit Host(chat::Server &server) : server_(server) {}

    // Handles every waiting event. Event views die at the next call on the
    // server, so everything kept or used after a call is copied first.
    void drain_events() {
        while (auto ev = server_.next_event()) {
            const std::string id = std::to_string(ev->client);
            switch (ev->kind) {
            case chat::Event::Kind::connected:
                out_line("connected " + id + " " + std::string(ev->peer));
                break;
            case chat::Event::Kind::registered: {
                std::string nick(ev->nick);
                out_line("registered " + id + " " + nick);
                ids_[nick] = ev->client;
                std::string banner = R"({"type":"banner","text":)";
                append_json_string(banner, "welcome, " + nick);
                banner += '}';
                try_call([&] { server_.send(ev->client, banner); });
                break;
            }
            case chat::Event::Kind::message:
                out_line("message " + id + " " + std::string(ev->nick) + " " + std::string(ev->payload));
                break;
            case chat::Event::Kind::disconnected:
                out_line("disconnected " + id + " " + field_or_dash(ev->nick) + " " +
                         std::string(ev->reason));
                if (!ev->nick.empty()) {
                    ids_.erase(std::string(ev->nick));
                }
                break;
            }
        }
    }

    void command(std::string_view line) {
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        if (line.empty()) {
            return;
        }
        if (line.rfind("/say ", 0) == 0) {
            std::string json = R"({"type":"all","from":"host","text":)";
            append_json_string(json, line.substr(5));
            json += '}';
            try_call([&] { out_line("said to " + std::to_string(server_.broadcast(json))); });
        } else if (line.rfind("/kick ", 0) == 0) {
            std::string nick(line.substr(6));
            auto it = ids_.find(nick);
            if (it == ids_.end()) {
                std::cerr << "no such user: " << nick << std::endl;
                return;
            }
            try_call([&] { server_.kick(it->second, "kicked by the operator"); });
        } else if (line == "/stats") {
            try_call([&] { print_stats(server_.stats()); });
        } else {
            std::cerr << "commands: /say TEXT, /kick NICK, /stats" << std::endl;
        }
    }

private:
    // A console command or a banner that fails (an unknown client, text that
    // is not UTF-8) is reported and the host carries on.
    template <class F> void try_call(F f) {
        try {
            f();
        } catch (const chat::Error &e) {
            std::cerr << "error " << e.code() << ": " << e.what() << std::endl;
        }
    }

    void print_stats(const ChatStats &st) {
        out_line("stats clients=" + std::to_string(st.clients) +
                 " registered=" + std::to_string(st.registered) +
                 " accepted=" + std::to_string(st.accepted) + " refused=" + std::to_string(st.refused) +
                 " frames_in=" + std::to_string(st.frames_in) +
                 " frames_out=" + std::to_string(st.frames_out) +
                 " bytes_in=" + std::to_string(st.bytes_in) + " bytes_out=" + std::to_string(st.bytes_out) +
                 " kicked=" + std::to_string(st.disconnects_kicked) +
                 " quit=" + std::to_string(st.disconnects_quit) +
                 " disconnect=" + std::to_string(st.disconnects_disconnect));
    }

    chat::Server &server_;
    std::map<std::string, std::uint64_t> ids_;
};

// One wait of the application's loop: the server's descriptors, plus stdin
// while it is open, for at most the server's timeout. Returns false on
// EINTR (the caller checks g_stop), throws on other select() errors.
bool wait_once(chat::Server &server, bool watch_stdin, bool &stdin_ready) {
    fd_set rd, wr;
    FD_ZERO(&rd);
    FD_ZERO(&wr);
    int maxfd = -1;
    if (watch_stdin) {
        FD_SET(STDIN_FILENO, &rd);
        maxfd = STDIN_FILENO;
    }
    // The library keeps its descriptors below FD_SETSIZE.
    for (const ChatPollFd &p : server.fds()) {
        if (p.events & CHAT_POLL_READ) {
            FD_SET(p.fd, &rd);
        }
        if (p.events & CHAT_POLL_WRITE) {
            FD_SET(p.fd, &wr);
        }
        maxfd = std::max(maxfd, p.fd);
    }
    const std::int32_t t = server.timeout_ms();
    timeval tv{t / 1000, static_cast<suseconds_t>((t % 1000) * 1000)};
    int n = select(maxfd + 1, &rd, &wr, nullptr, t < 0 ? nullptr : &tv);
    if (n < 0) {
        if (errno == EINTR) {
            return false;
        }
        throw std::runtime_error(std::string("select: ") + std::strerror(errno));
    }
    stdin_ready = watch_stdin && FD_ISSET(STDIN_FILENO, &rd);
    return true;
}

// The operator console: stdin split into lines. A line longer than any
// frame could carry is dropped whole, so a runaway input cannot grow memory.
class Console {
public:
    static constexpr std::size_t MAX_LINE = 64 * 1024;

    // Reads what stdin has and runs each complete line; returns false at
    // EOF (after running a last unterminated line).
    bool read_from_stdin(Host &host) {
        char buf[4096];
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                return true;
            }
            std::perror("read stdin");
            n = 0;
        }
        if (n == 0) {
            if (!pending_.empty() && !discarding_) {
                host.command(pending_);
            }
            pending_.clear();
            return false;
        }
        pending_.append(buf, static_cast<std::size_t>(n));
        std::size_t start = 0;
        for (std::size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
            if (discarding_) {
                discarding_ = false;
            } else {
                host.command(std::string_view(pending_).substr(start, nl - start));
            }
        }
        pending_.erase(0, start);
        if (pending_.size() > MAX_LINE) {
            if (!discarding_) {
                std::cerr << "console line over " << MAX_LINE << " bytes: dropped" << std::endl;
            }
            discarding_ = true;
            pending_.clear();
        }
        return true;
    }

private:
    std::string pending_;
    bool discarding_ = false;
};

int run(const std::string &listen_addr) {
    chat::Config cfg;
    cfg.listen_addr = listen_addr;
    chat::Server server(cfg);
    SignalTarget target(server);
    install_signal_handlers();

    // The port may have been 0: report the one actually bound.
    const std::string host_part = listen_addr.substr(0, listen_addr.rfind(':'));
    out_line("listening on " + host_part + ":" + std::to_string(server.port()));

    Host host(server);
    Console console;
    bool stdin_open = true;
    while (!g_stop && stdin_open) {
        bool stdin_ready = false;
        if (!wait_once(server, true, stdin_ready)) {
            continue;
        }
        if (stdin_ready) {
            stdin_open = console.read_from_stdin(host);
        }
        server.poll(0);
        host.drain_events();
    }

    bool done = server.shutdown(SHUTDOWN_DEADLINE_MS);
    host.drain_events();
    while (!done) {
        bool unused = false;
        if (wait_once(server, false, unused)) {
            server.poll(0);
        }
        host.drain_events();
        done = server.shutdown(SHUTDOWN_DEADLINE_MS);
    }
    out_line("stopped");
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    if (argc > 2) {
        std::cerr << "usage: " << argv[0] << " [LISTEN_ADDR]" << std::endl;
        return 2;
    }
    try {
        return run(argc == 2 ? argv[1] : "127.0.0.1:7878");
    } catch (const chat::Error &e) {
        std::cerr << "cpp_host: " << e.what() << " (" << chat_strerror(e.code()) << ")" << std::endl;
    } catch (const std::exception &e) {
        std::cerr << "cpp_host: " << e.what() << std::endl;
    }
    return 1;
}
