// cpp_host: a C++ program that embeds the chat server in its OWN select()
// loop, next to its operator console on stdin. This is the shape of an
// existing application adding chat: the application keeps its loop, asks the
// server which descriptors to watch (Server::fds) and for how long it may
// wait (Server::timeout_ms), and calls Server::poll(0) after each wait.
//
//   cpp_host [--tokens A,B,C] [--log-level LEVEL] [LISTEN_ADDR]
//                                                  (default 127.0.0.1:7878)
//   cpp_host --help
//
// --tokens turns on approval of registrations: a hello whose "token" is in
// the list is approved, any other (or none) is rejected with the message
// "unknown token" (the client may try again). Tokens are credentials: they
// are never printed, by this host or by the library's log.
//
// --log-level (off, error, warn, info, debug, trace; default warn): the
// library's log records at that level and above, on stderr as
// "chat: LEVEL: MESSAGE" (Server::set_log with a lambda).
//
// Every user let in gets a member number (1, 2, ...), attached to it as the
// library's user data; the events of that client carry it from then on, and
// the lines below end with " member=N" once they do (with --tokens the
// number is attached before approval, so even the registered line has it).
//
// stdout: "listening on ADDR", then one line per event:
//   connected ID PEER | approval ID NICK with-token|no-token |
//   rejected ID NICK | registered ID NICK | message ID NICK JSON |
//   joined ID NICK ROOM | parted ID NICK ROOM | disconnected ID NICK REASON
//   (NICK is "-" for a client that never registered), and the answers to
//   console commands.
// stdin (operator console):
//   /say TEXT          broadcast {"type":"all","from":"host","text":TEXT}
//   /room #ROOM TEXT   send {"type":"room","room":ROOM,"from":"host",
//                      "text":TEXT} to the room's members only
//   /members #ROOM     print "members ROOM ID..." (joining order)
//   /remove NICK #ROOM take that user out of the room
//   /kick NICK         disconnect that user (reason "kicked")
//   (NICK in any case: the library looks it up, Server::find_client)
//   /stats             print the server's counters
//   /quit              shut down
// /quit, SIGINT or SIGTERM: graceful shutdown, "stopped", exit 0. At the end
// of stdin (</dev/null, or under a service manager) the console is off and
// the host keeps serving until a signal.
//
// Build (after `cargo build`), one command:
//   g++ -std=c++17 -Iinclude -Ibindings/cpp examples/cpp_host.cpp
//       target/debug/libchat.a -lpthread -ldl -lm -o cpp_host

#include "chat.hpp"

#include <fcntl.h>
#include <sys/select.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <set>
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

// The end of an event line: the member number the event carries, if any.
std::string member_suffix(std::uint64_t user_data) {
    return user_data != 0 ? " member=" + std::to_string(user_data) : std::string();
}

// "a,b,c" as a set; empty entries are ignored.
std::set<std::string> split_tokens(std::string_view list) {
    std::set<std::string> out;
    while (!list.empty()) {
        std::size_t comma = list.find(',');
        std::string_view item = list.substr(0, comma);
        if (!item.empty()) {
            out.emplace(item);
        }
        list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
    }
    return out;
}

// What the host uses of an event, copied: the views of a chat::Event die at
// the next call on the server, and handling an event makes such calls.
struct Seen {
    chat::Event::Kind kind;
    std::uint64_t client;
    std::string id;
    std::string peer;
    std::string nick;
    std::string payload;
    std::string reason;
    std::string room;
    std::optional<std::string> token;
    std::uint64_t ticket;
    std::uint64_t user_data;

    explicit Seen(const chat::Event &ev)
        : kind(ev.kind), client(ev.client), id(std::to_string(ev.client)), peer(ev.peer), nick(ev.nick),
          payload(ev.payload), reason(ev.reason), room(ev.room), ticket(ev.ticket), user_data(ev.user_data) {
        if (ev.token) {
            token.emplace(*ev.token);
        }
    }
};

class Host {
public:
    // With `tokens` (--tokens given), every hello waits for approval.
    Host(chat::Server &server, std::optional<std::set<std::string>> tokens)
        : server_(server), tokens_(std::move(tokens)) {}

    // Handles every waiting event.
    void drain_events() {
        while (auto next = server_.next_event()) {
            const Seen ev(*next);
            const std::string member = member_suffix(ev.user_data);
            switch (ev.kind) {
            case chat::Event::Kind::connected:
                out_line("connected " + ev.id + " " + ev.peer);
                break;
            case chat::Event::Kind::approval:
                // The token is a credential: whether there is one, never what.
                out_line("approval " + ev.id + " " + ev.nick + (ev.token ? " with-token" : " no-token") + member);
                decide(ev);
                break;
            case chat::Event::Kind::registered:
                out_line("registered " + ev.id + " " + ev.nick + member);
                if (ev.user_data == 0) {
                    // Without approval, the first chance to number a member.
                    try_call([&] { server_.set_user_data(ev.client, ++members_); });
                }
                welcome(ev);
                break;
            case chat::Event::Kind::message:
                out_line("message " + ev.id + " " + ev.nick + " " + ev.payload + member);
                break;
            case chat::Event::Kind::joined:
                out_line("joined " + ev.id + " " + ev.nick + " " + ev.room + member);
                break;
            case chat::Event::Kind::parted:
                out_line("parted " + ev.id + " " + ev.nick + " " + ev.room + member);
                break;
            case chat::Event::Kind::intercepted:
                // This host never turns interception on; should a message be
                // held anyway, it is routed as it is.
                out_line("intercepted " + ev.id + " " + ev.nick + " " + std::to_string(ev.ticket) + member);
                try_call([&] { server_.release(ev.ticket); });
                break;
            case chat::Event::Kind::disconnected:
                out_line("disconnected " + ev.id + " " + field_or_dash(ev.nick) + " " + ev.reason + member);
                break;
            case chat::Event::Kind::renamed: {
                const std::string old_nick(next->old_nick);
                out_line("renamed " + ev.id + " " + old_nick + " " + ev.nick + member);
                break;
            }
            case chat::Event::Kind::parked:
                out_line("parked " + ev.id + " " + ev.nick + " " + ev.reason + member);
                break;
            case chat::Event::Kind::resumed:
                // The session of `previous` goes on as this id.
                out_line("resumed " + ev.id + " " + ev.nick + " " + std::to_string(next->previous) + member);
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
        } else if (line.rfind("/room ", 0) == 0) {
            std::string_view rest = line.substr(6);
            const std::size_t space = rest.find(' ');
            if (space == std::string_view::npos) {
                std::cerr << "usage: /room #ROOM TEXT" << std::endl;
                return;
            }
            const std::string room(rest.substr(0, space));
            std::string json = R"({"type":"room","room":)";
            append_json_string(json, room);
            json += R"(,"from":"host","text":)";
            append_json_string(json, rest.substr(space + 1));
            json += '}';
            try_call([&] { out_line("said to " + std::to_string(server_.room_send(room, json)) + " in " + room); });
        } else if (line.rfind("/members ", 0) == 0) {
            const std::string room(line.substr(9));
            try_call([&] {
                std::string out = "members " + room;
                for (std::uint64_t id : server_.room_members(room)) {
                    out += " " + std::to_string(id);
                }
                out_line(out);
            });
        } else if (line.rfind("/remove ", 0) == 0) {
            std::string_view rest = line.substr(8);
            const std::size_t space = rest.find(' ');
            const std::optional<std::uint64_t> id = server_.find_client(std::string(rest.substr(0, space)));
            if (space == std::string_view::npos || !id) {
                std::cerr << "usage: /remove NICK #ROOM (a user who is online)" << std::endl;
                return;
            }
            try_call([&] { server_.room_remove(*id, std::string(rest.substr(space + 1))); });
        } else if (line.rfind("/kick ", 0) == 0) {
            const std::string nick(line.substr(6));
            const std::optional<std::uint64_t> id = server_.find_client(nick);
            if (!id) {
                std::cerr << "no such user: " << nick << std::endl;
                return;
            }
            try_call([&] { server_.kick(*id, "kicked by the operator"); });
        } else if (line == "/stats") {
            try_call([&] { print_stats(server_.stats()); });
        } else if (line == "/quit") {
            quit_ = true;
        } else {
            std::cerr << "commands: /say TEXT, /room #ROOM TEXT, /members #ROOM, /remove NICK #ROOM, "
                         "/kick NICK, /stats, /quit"
                      << std::endl;
        }
    }

    // Whether /quit was given.
    bool quit() const { return quit_; }

private:
    // --tokens: approve a hello with a listed token, numbering the member
    // first so that its registered event already carries the number.
    void decide(const Seen &ev) {
        if (!tokens_) {
            // Approval is only on with --tokens; nothing else asks.
            try_call([&] { server_.approve(ev.client); });
        } else if (ev.token && tokens_->count(*ev.token) != 0) {
            try_call([&] {
                server_.set_user_data(ev.client, members_ + 1);
                server_.approve(ev.client);
                ++members_;
            });
        } else {
            try_call([&] { server_.reject(ev.client, "unknown token"); });
            out_line("rejected " + ev.id + " " + ev.nick);
        }
    }

    void welcome(const Seen &ev) {
        std::string banner = R"({"type":"banner","text":)";
        append_json_string(banner, "welcome, " + ev.nick);
        banner += '}';
        try_call([&] { server_.send(ev.client, banner); });
    }

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
    std::optional<std::set<std::string>> tokens_;
    bool quit_ = false;
    // Members numbered so far; the next one is members_ + 1.
    std::uint64_t members_ = 0;
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

// The names of the log levels, CHAT_LOG_OFF (0) to CHAT_LOG_TRACE (5).
constexpr const char *LEVELS[] = {"off", "error", "warn", "info", "debug", "trace"};

int run(const std::string &listen_addr, std::optional<std::set<std::string>> tokens, int log_level) {
    chat::Config cfg;
    cfg.listen_addr = listen_addr;
    cfg.approve_registrations = tokens.has_value();
    chat::Server server(cfg);
    server.set_log(log_level, [](int level, std::string_view message) {
        std::cerr << "chat: " << LEVELS[level >= 1 && level <= 5 ? level : 0] << ": " << message << std::endl;
    });
    SignalTarget target(server);
    install_signal_handlers();

    // The port may have been 0: report the one actually bound.
    out_line("listening on " + server.local_addr());

    Host host(server, std::move(tokens));
    Console console;
    // Started with stdin closed (not even /dev/null): no console.
    bool stdin_open = fcntl(STDIN_FILENO, F_GETFD) != -1;
    while (!g_stop && !host.quit()) {
        bool stdin_ready = false;
        if (!wait_once(server, stdin_open, stdin_ready)) {
            continue;
        }
        if (stdin_ready && !console.read_from_stdin(host)) {
            // A service has no console: keep serving until a signal.
            stdin_open = false;
            std::cerr << "cpp_host: end of stdin: the console is off; stop with SIGINT or SIGTERM" << std::endl;
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

void usage(std::ostream &to, const char *program) {
    to << "usage: " << program << " [--tokens A,B,C] [--log-level LEVEL] [LISTEN_ADDR]\n"
       << "\n"
       << "A chat server in C++ over libchat, in the program's own select() loop:\n"
       << "clients connect to LISTEN_ADDR (IP:port, default 127.0.0.1:7878; port 0\n"
       << "picks a free one). Prints \"listening on ADDR\", then one line per event.\n"
       << "\n"
       << "  --tokens A,B,C     approve only a hello whose token is listed\n"
       << "  --log-level LEVEL  the library's records on stderr at LEVEL and above:\n"
       << "                     off, error, warn, info, debug, trace (default warn)\n"
       << "  --help             this text\n"
       << "\n"
       << "Console (stdin): /say TEXT, /room #ROOM TEXT, /members #ROOM,\n"
       << "/remove NICK #ROOM, /kick NICK, /stats, /quit. Without a stdin\n"
       << "(</dev/null, a service) it serves until SIGINT or SIGTERM, which shut it\n"
       << "down gracefully, as /quit does.\n";
}

int main(int argc, char **argv) {
    std::optional<std::set<std::string>> tokens;
    int log_level = CHAT_LOG_WARN;
    std::string listen = "127.0.0.1:7878";
    const auto level_of = [](std::string_view name) {
        for (int i = CHAT_LOG_OFF; i <= CHAT_LOG_TRACE; i++) {
            if (name == LEVELS[i]) {
                return i;
            }
        }
        return -1;
    };
    for (int arg = 1; arg < argc; arg++) {
        const std::string_view a = argv[arg];
        if (a == "--help" || a == "-h") {
            usage(std::cout, argv[0]);
            return 0;
        } else if (a == "--tokens" && arg + 1 < argc) {
            tokens = split_tokens(argv[++arg]);
        } else if (a == "--log-level" && arg + 1 < argc && level_of(argv[arg + 1]) >= 0) {
            log_level = level_of(argv[++arg]);
        } else if (a.empty() || a[0] == '-' || arg + 1 < argc) {
            std::cerr << "cpp_host: bad argument: " << a << "\n";
            usage(std::cerr, argv[0]);
            return 2;
        } else {
            listen = argv[arg];
        }
    }
    try {
        return run(listen, std::move(tokens), log_level);
    } catch (const chat::Error &e) {
        std::cerr << "cpp_host: " << e.what() << " (" << chat_strerror(e.code()) << ")" << std::endl;
    } catch (const std::exception &e) {
        std::cerr << "cpp_host: " << e.what() << std::endl;
    }
    return 1;
}
