// chat.hpp: a header-only C++17 wrapper over the chat C ABI (include/chat.h).
//
// RAII ownership of the ChatServer handle, std::string_view for borrowed
// text, and exceptions instead of negative return codes: every failing C
// call throws chat::Error carrying the CHAT_ERR_* code and the text of
// chat_last_error().
//
// Threading: like the C handle, a chat::Server belongs to one thread. The one
// exception is Server::wakeup(), which may be called from any thread and from
// a signal handler. A log callback (Server::set_log) runs on that thread,
// inside the call on the server that logged.
#ifndef CHAT_HPP
#define CHAT_HPP

#include "chat.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chat {

/// A failed C call: code() is the CHAT_ERR_* value, what() the library's
/// message (chat_last_error(), or chat_strerror(code) when there is none).
class Error : public std::runtime_error {
public:
    Error(int code, const std::string &message) : std::runtime_error(message), code_(code) {}

    /// The CHAT_ERR_* code (negative).
    int code() const noexcept { return code_; }

private:
    int code_;
};

namespace detail {

// Builds the exception right after the failing call, before any other call
// on this thread can replace chat_last_error().
[[noreturn]] inline void fail(int code) {
    const char *last = chat_last_error();
    throw Error(code, last != nullptr ? last : chat_strerror(code));
}

inline int check(int rc) {
    if (rc < 0) {
        fail(rc);
    }
    return rc;
}

inline const std::uint8_t *bytes(std::string_view s) noexcept {
    return reinterpret_cast<const std::uint8_t *>(s.data());
}

inline std::string_view view(const char *s) noexcept {
    return s != nullptr ? std::string_view(s) : std::string_view();
}

// A C string the library returned, or a throw when it returned NULL for an
// error.
inline std::string text_or_throw(const char *s) {
    if (s == nullptr) {
        int code = chat_last_error_code();
        fail(code < 0 ? code : CHAT_ERR_NULL);
    }
    return std::string(s);
}

} // namespace detail

/// Server settings: every field of ChatConfig (see chat.h for each one),
/// with the library's defaults (chat_config_default) already in, so change
/// only what you need. The text fields are std::strings; the numbers and
/// switches are ChatConfig's own, so a field the library adds is here
/// without any change to this wrapper.
struct Config : ChatConfig {
    /// "IP:port"; port 0 picks a free port (see Server::port()).
    std::string listen_addr;
    /// TLS: the certificate chain and its key, PEM text (not paths); both
    /// or neither. Empty: plain TCP.
    std::string tls_cert_pem;
    std::string tls_key_pem;
    /// A WebSocket listener, "IP:port"; empty: none.
    std::string ws_listen_addr;
    /// The WebSocket path; empty: "/chat".
    std::string ws_path;
    /// Allowed browser origins, comma-separated; empty: any.
    std::string ws_allowed_origins;
    /// A cluster through Redis, "redis://host:port/db"; empty: one node.
    std::string redis_url;
    /// The cluster's name; empty: "chat".
    std::string cluster_name;

    Config() : ChatConfig{} {
        ChatConfig &c = *this;
        c.struct_size = sizeof(ChatConfig);
        chat_config_default(&c);
        listen_addr = detail::view(c.listen_addr);
    }

    /// The C struct; its pointers point into *this, so keep *this alive and
    /// unchanged while the result is in use.
    ChatConfig native() const noexcept {
        ChatConfig c = *this;
        c.struct_size = sizeof c;
        c.listen_addr = listen_addr.c_str();
        const auto text = [](const std::string &v) { return v.empty() ? nullptr : v.c_str(); };
        const auto bytes = [](const std::string &v) {
            return v.empty() ? nullptr : reinterpret_cast<const std::uint8_t *>(v.data());
        };
        c.tls_cert_pem = bytes(tls_cert_pem);
        c.tls_cert_len = tls_cert_pem.size();
        c.tls_key_pem = bytes(tls_key_pem);
        c.tls_key_len = tls_key_pem.size();
        c.ws_listen_addr = text(ws_listen_addr);
        c.ws_path = text(ws_path);
        c.ws_allowed_origins = text(ws_allowed_origins);
        c.redis_url = text(redis_url);
        c.cluster_name = text(cluster_name);
        return c;
    }
};

/// One thing that happened to one client.
///
/// The string_views borrow from the server: they stay valid only until the
/// next call on the same Server (next_event, poll, send, kick, ...). Copy
/// what you keep into a std::string first.
struct Event {
    enum class Kind : std::uint32_t {
        connected = CHAT_EVENT_CONNECTED,
        registered = CHAT_EVENT_REGISTERED,
        message = CHAT_EVENT_MESSAGE,
        disconnected = CHAT_EVENT_DISCONNECTED,
        /// The client joined a room (room).
        joined = CHAT_EVENT_JOINED,
        /// The client left a room (room): by part, Server::room_remove, or
        /// before its disconnected.
        parted = CHAT_EVENT_PARTED,
        /// With approve_registrations: a hello (nick, token) waits for
        /// Server::approve or Server::reject.
        approval = CHAT_EVENT_APPROVAL,
        /// With intercept_messages: a msg, all or room frame (payload, as
        /// the client sent it) waits for Server::release or Server::drop
        /// (ticket).
        intercepted = CHAT_EVENT_INTERCEPTED,
        /// The client renamed itself (nick: the new one, old_nick).
        renamed = CHAT_EVENT_RENAMED,
        /// A resumable session resumed on this connection: the client known
        /// until now as `previous` is `client` from now on (nick, rooms,
        /// user data and waiting frames moved here); `previous` is never
        /// valid again and gets no disconnected.
        resumed = CHAT_EVENT_RESUMED,
        /// The connection of a resumable session ended (reason: disconnect,
        /// timeout or slow_consumer) and the session waits for a resume
        /// under the same id; resumed (on a new id) or disconnected (on
        /// this one) follows.
        parked = CHAT_EVENT_PARKED,
    };

    Kind kind;
    /// The client id: never 0, never reused within one server.
    std::uint64_t client;
    /// "IP:port" of the client (every kind).
    std::string_view peer;
    /// Its nick: registered, message, joined, parted, intercepted, the
    /// disconnect of a registered client, and approval (the nick asked for);
    /// empty otherwise.
    std::string_view nick;
    /// message: the JSON object as the recipients got it; intercepted: as
    /// the client sent it; empty otherwise.
    std::string_view payload;
    /// disconnected: quit, disconnect, slow_consumer, timeout,
    /// protocol_error, kicked or shutdown; parked: why the connection ended;
    /// empty otherwise.
    std::string_view reason;
    /// message: how many output queues took it; 0 otherwise.
    std::uint32_t recipients;
    /// joined, parted: the room's name; empty otherwise.
    std::string_view room;
    /// intercepted: what to pass to Server::release or Server::drop; 0
    /// otherwise.
    std::uint64_t ticket;
    /// approval: the hello's "token", or nullopt if it sent none (an empty
    /// token is a token); nullopt for other kinds.
    std::optional<std::string_view> token;
    /// Every kind: the value given to Server::set_user_data (0 until then).
    std::uint64_t user_data;
    /// renamed: the nick before; empty otherwise.
    std::string_view old_nick;
    /// resumed: the id the session had before; 0 otherwise.
    std::uint64_t previous;
};

/// The word for a kind: "connected", "registered", "message", "disconnected",
/// "joined", "parted", "approval", "intercepted", "renamed", "resumed",
/// "parked".
inline const char *to_string(Event::Kind kind) noexcept {
    switch (kind) {
    case Event::Kind::connected:
        return "connected";
    case Event::Kind::registered:
        return "registered";
    case Event::Kind::message:
        return "message";
    case Event::Kind::disconnected:
        return "disconnected";
    case Event::Kind::joined:
        return "joined";
    case Event::Kind::parted:
        return "parted";
    case Event::Kind::approval:
        return "approval";
    case Event::Kind::intercepted:
        return "intercepted";
    case Event::Kind::renamed:
        return "renamed";
    case Event::Kind::resumed:
        return "resumed";
    case Event::Kind::parked:
        return "parked";
    }
    return "unknown";
}

/// A log callback: the level (CHAT_LOG_ERROR 1 .. CHAT_LOG_TRACE 5) and one
/// line of text, valid during the call only. It must not call the server;
/// an exception it throws is swallowed (it cannot cross into C).
using LogFn = std::function<void(int level, std::string_view message)>;

/// Owns one ChatServer. Move-only; a moved-from Server is empty (its
/// native_handle() is null) and every call on it but wakeup() throws
/// Error(CHAT_ERR_NULL).
class Server {
public:
    /// Binds the listener; throws Error (CHAT_ERR_ADDR, CHAT_ERR_BIND, ...).
    explicit Server(const Config &cfg) {
        const ChatConfig c = cfg.native();
        s_ = chat_server_new(&c);
        if (s_ == nullptr) {
            int code = chat_last_error_code();
            detail::fail(code < 0 ? code : CHAT_ERR_INVALID);
        }
    }

    ~Server() { chat_server_free(s_); }

    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;

    // The log callback lives on the heap, so its address, which the C
    // side holds, survives moves; it is destroyed after the handle is freed.
    Server(Server &&other) noexcept : s_(std::exchange(other.s_, nullptr)), log_(std::move(other.log_)) {}

    Server &operator=(Server &&other) noexcept {
        if (this != &other) {
            chat_server_free(std::exchange(s_, std::exchange(other.s_, nullptr)));
            log_ = std::move(other.log_);
        }
        return *this;
    }

    /// Whether this Server holds a handle (false once moved from).
    explicit operator bool() const noexcept { return s_ != nullptr; }

    /// One select() round, waiting up to timeout_ms (< 0: no limit).
    /// Returns how many events are waiting.
    int poll(int timeout_ms) { return detail::check(chat_server_poll_once(s_, timeout_ms)); }

    /// The oldest waiting event, or nullopt. Its views borrow from the
    /// server: see Event.
    std::optional<Event> next_event() {
        ChatEvent ev{};
        ev.struct_size = sizeof ev; // what this header knows of the struct
        if (detail::check(chat_server_next_event(s_, &ev)) == 0) {
            return std::nullopt;
        }
        Event out{};
        out.kind = static_cast<Event::Kind>(ev.kind);
        out.client = ev.client;
        out.peer = detail::view(ev.peer);
        out.nick = detail::view(ev.nick);
        if (ev.payload != nullptr) {
            out.payload = std::string_view(reinterpret_cast<const char *>(ev.payload), ev.payload_len);
        }
        out.reason = detail::view(ev.reason);
        out.recipients = ev.recipients;
        out.room = detail::view(ev.room);
        out.ticket = ev.ticket;
        if (ev.token != nullptr) {
            out.token = std::string_view(ev.token);
        }
        out.user_data = ev.user_data;
        out.old_nick = detail::view(ev.old_nick);
        out.previous = ev.previous;
        return out;
    }

    /// Queues one JSON object to one client.
    void send(std::uint64_t client, std::string_view json) {
        detail::check(chat_send(s_, client, detail::bytes(json), json.size()));
    }

    /// Queues one JSON object to every registered client; returns how many.
    int broadcast(std::string_view json) {
        return detail::check(chat_broadcast(s_, detail::bytes(json), json.size()));
    }

    /// Disconnects a client as "kicked"; reason (may be null) goes to it as
    /// the error frame's "message".
    void kick(std::uint64_t client, const char *reason = nullptr) {
        detail::check(chat_kick(s_, client, reason));
    }

    /// Sends one client (connected, or a parked session) what the host says
    /// itself: {"type":"notice","text":text}. No client can send a notice.
    void notice(std::uint64_t client, const std::string &text) {
        detail::check(chat_notice(s_, client, text.c_str()));
    }

    /// Sends every registered client (parked sessions included) the notice
    /// {"type":"notice","text":text}; returns how many it was queued to.
    int notice_all(const std::string &text) { return detail::check(chat_notice_all(s_, text.c_str())); }

    /// Queues one JSON object to every member of a room ("#name", compared
    /// case-insensitively); returns how many. Throws
    /// Error(CHAT_ERR_UNKNOWN_ROOM) if nobody is in it.
    int room_send(const std::string &room, std::string_view json) {
        return detail::check(chat_room_send(s_, room.c_str(), detail::bytes(json), json.size()));
    }

    /// A room's members, in joining order. Throws
    /// Error(CHAT_ERR_UNKNOWN_ROOM) if nobody is in it.
    std::vector<std::uint64_t> room_members(const std::string &room) const {
        std::vector<std::uint64_t> out;
        // As in fds(): ask again if the room grew between the two calls.
        for (;;) {
            std::size_t cap = out.size();
            int n = detail::check(chat_room_members(s_, room.c_str(), out.empty() ? nullptr : out.data(), cap));
            if (static_cast<std::size_t>(n) <= cap) {
                out.resize(static_cast<std::size_t>(n));
                return out;
            }
            out.resize(static_cast<std::size_t>(n));
        }
    }

    /// Takes a client out of a room (it gets "parted"); throws
    /// CHAT_ERR_UNKNOWN_CLIENT, CHAT_ERR_UNKNOWN_ROOM or CHAT_ERR_NOT_IN_ROOM.
    void room_remove(std::uint64_t client, const std::string &room) {
        detail::check(chat_room_remove(s_, client, room.c_str()));
    }

    /// With approve_registrations: lets in a client whose approval event
    /// arrived. Throws CHAT_ERR_NOT_PENDING if it is not waiting.
    void approve(std::uint64_t client) { detail::check(chat_approve(s_, client)); }

    /// With approve_registrations: refuses a client's hello; message (may be
    /// null) goes to it as the "rejected" error frame's "message".
    void reject(std::uint64_t client, const char *message = nullptr) {
        detail::check(chat_reject(s_, client, message));
    }

    /// With intercept_messages: routes a held message as it is.
    void release(std::uint64_t ticket) { detail::check(chat_release(s_, ticket)); }

    /// With intercept_messages: discards a held message; its sender gets an
    /// error frame with code (null: "dropped") and message (may be null).
    void drop(std::uint64_t ticket, const char *code = nullptr, const char *message = nullptr) {
        detail::check(chat_drop(s_, ticket, code, message));
    }

    /// Attaches a value to a client; every later Event of it carries it in
    /// user_data.
    void set_user_data(std::uint64_t client, std::uint64_t data) {
        detail::check(chat_set_user_data(s_, client, data));
    }

    /// The bound port.
    std::uint16_t port() const {
        require();
        return chat_server_port(s_);
    }

    /// The address the server listens on, "IP:port" (the real port).
    std::string local_addr() const { return detail::text_or_throw(chat_server_local_addr(s_)); }

    /// The WebSocket listener's address, or nullopt without one.
    std::optional<std::string> ws_addr() const {
        require();
        const char *addr = chat_server_ws_addr(s_);
        return addr != nullptr ? std::optional<std::string>(addr) : std::nullopt;
    }

    /// The registered client with this nick, compared case-insensitively
    /// ("ALICE" finds alice), or nullopt if nobody has it.
    std::optional<std::uint64_t> find_client(const std::string &nick) const {
        std::int64_t id = chat_find_client(s_, nick.c_str());
        if (id == CHAT_ERR_UNKNOWN_CLIENT) {
            return std::nullopt;
        }
        detail::check(static_cast<int>(id < 0 ? id : 0));
        return static_cast<std::uint64_t>(id);
    }

    /// A connected client's nick, or nullopt before its hello. Throws
    /// Error(CHAT_ERR_UNKNOWN_CLIENT) for an id that is not connected.
    std::optional<std::string> nick(std::uint64_t client) const {
        // The address answers for every connected client: it tells an
        // unknown id (a throw) from one without a nick yet.
        (void)peer(client);
        const char *nick = chat_client_nick(s_, client);
        return nick != nullptr ? std::optional<std::string>(nick) : std::nullopt;
    }

    /// A connected client's address, "IP:port". Throws
    /// Error(CHAT_ERR_UNKNOWN_CLIENT) for an id that is not connected.
    std::string peer(std::uint64_t client) const { return detail::text_or_throw(chat_client_peer(s_, client)); }

    /// Sends the server's log records at max_level (CHAT_LOG_ERROR 1 ..
    /// CHAT_LOG_TRACE 5) and above to fn, replacing any callback before;
    /// CHAT_LOG_OFF or an empty fn turns logging off. The first record after
    /// turning it on says where the server listens.
    void set_log(int max_level, LogFn fn) {
        auto next = fn && max_level > CHAT_LOG_OFF ? std::make_unique<LogFn>(std::move(fn)) : nullptr;
        ChatLogFn c_fn = next ? &Server::log_trampoline : nullptr;
        detail::check(chat_server_set_log(s_, max_level, c_fn, next.get()));
        // The C side holds the new one now: the old one may go.
        log_ = std::move(next);
    }

    /// The descriptors to watch now (CHAT_POLL_READ / CHAT_POLL_WRITE), for
    /// a host running its own loop: wait on them, then call poll(0). The set
    /// changes after every call that does I/O or queues output: ask again.
    std::vector<ChatPollFd> fds() const {
        std::vector<ChatPollFd> out;
        // The count can change between the sizing call and the filling one
        // only if something else ran on the server in between; loop anyway.
        for (;;) {
            std::size_t cap = out.size();
            int n = detail::check(chat_server_fds(s_, out.empty() ? nullptr : out.data(), cap));
            if (static_cast<std::size_t>(n) <= cap) {
                out.resize(static_cast<std::size_t>(n));
                return out;
            }
            out.resize(static_cast<std::size_t>(n));
        }
    }

    /// Longest the host may wait before calling poll(); -1: no limit.
    std::int32_t timeout_ms() const {
        require();
        return chat_server_timeout_ms(s_);
    }

    /// Makes a blocked poll() (or a host's select() on fds()) return. The
    /// one call that is safe from another thread and from a signal handler;
    /// failures are ignored (an empty Server does nothing).
    void wakeup() noexcept {
        if (s_ != nullptr) {
            (void)chat_server_wakeup(s_);
        }
    }

    /// Starts a graceful shutdown on the first call. Returns true once every
    /// connection is closed; until then keep calling poll() and shutdown().
    bool shutdown(int deadline_ms) { return detail::check(chat_server_shutdown(s_, deadline_ms)) == 1; }

    /// The counters.
    ChatStats stats() const {
        ChatStats st{};
        st.struct_size = sizeof st;
        detail::check(chat_server_stats(s_, &st));
        return st;
    }

    /// The C handle, still owned by this Server (null once moved from).
    ChatServer *native_handle() const noexcept { return s_; }

private:
    // For the calls whose C form cannot report a NULL handle as an error.
    void require() const {
        if (s_ == nullptr) {
            throw Error(CHAT_ERR_NULL, "chat::Server is empty (moved from)");
        }
    }

    static void log_trampoline(void *user, int level, const char *message) noexcept {
        try {
            (*static_cast<LogFn *>(user))(level, detail::view(message));
        } catch (...) {
            // Nothing may unwind into the library.
        }
    }

    ChatServer *s_ = nullptr;
    std::unique_ptr<LogFn> log_;
};

} // namespace chat

#endif // CHAT_HPP
