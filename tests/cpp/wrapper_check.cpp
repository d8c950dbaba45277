// Checks of bindings/cpp/chat.hpp that need no client: ownership rules at
// compile time, and error codes, moves and the pump at run time. Built and
// run by tests/cpp_host.rs; prints "ok" and exits 0 when every check passes.

#include "chat.hpp"
#include "check.hpp"

#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

static_assert(!std::is_copy_constructible_v<chat::Server>, "Server must not be copyable");
static_assert(!std::is_copy_assignable_v<chat::Server>, "Server must not be copy-assignable");
static_assert(std::is_nothrow_move_constructible_v<chat::Server>, "Server moves must not throw");
static_assert(std::is_nothrow_move_assignable_v<chat::Server>, "Server moves must not throw");
static_assert(std::is_base_of_v<std::runtime_error, chat::Error>, "Error is a runtime_error");
static_assert(!std::is_convertible_v<chat::Config, chat::Server>, "the Server constructor is explicit");

namespace {

using check::expect;
using check::failures;
using check::loopback;
using check::expect_error;

} // namespace

int main() {
    chat::Config defaults;
    expect(defaults.max_frame_bytes == 65536, "default max_frame_bytes is 65536");
    expect(defaults.max_queue_bytes == (1u << 20), "default max_queue_bytes is 1 MiB");
    expect(!defaults.listen_addr.empty(), "default listen_addr is set");

    chat::Config bad = loopback();
    bad.listen_addr = "not an address";
    expect_error(CHAT_ERR_ADDR, "invalid listen address", [&] { chat::Server s(bad); });

    chat::Config tiny = loopback();
    tiny.max_frame_bytes = 1;
    expect_error(CHAT_ERR_CONFIG, "max_frame_bytes out of range", [&] { chat::Server s(tiny); });

    chat::Server a(loopback());
    expect(static_cast<bool>(a) && a.native_handle() != nullptr, "a new server holds a handle");
    expect(a.port() != 0, "port 0 binds a real port");
    expect(!a.fds().empty(), "the server wants its descriptors watched");
    expect(a.poll(0) == 0, "an idle server has no events");
    expect(!a.next_event().has_value(), "no event waiting");

    expect_error(CHAT_ERR_UNKNOWN_CLIENT, "send to an unknown client", [&] { a.send(42, R"({"type":"x"})"); });
    expect_error(CHAT_ERR_NOT_JSON_OBJECT, "broadcast a JSON array", [&] { a.broadcast("[1,2]"); });
    expect_error(CHAT_ERR_UNKNOWN_CLIENT, "kick an unknown client", [&] { a.kick(7, "bye"); });
    expect(a.broadcast(R"({"type":"note"})") == 0, "broadcast with nobody online reaches 0");
    expect(a.stats().clients == 0, "no clients yet");

    // wakeup() must make a poll without a time limit return.
    a.wakeup();
    expect(a.poll(-1) == 0, "a wakeup ends a poll without limit");

    const std::uint16_t port = a.port();
    chat::Server b(std::move(a));
    expect(!a && a.native_handle() == nullptr, "a moved-from server is empty");
    expect(b.port() == port, "the moved-to server owns the handle");
    expect_error(CHAT_ERR_NULL, "poll on a moved-from server", [&] { a.poll(0); });
    expect_error(CHAT_ERR_NULL, "port of a moved-from server", [&] { (void)a.port(); });
    a.wakeup(); // noexcept and harmless on an empty server

    chat::Server c(loopback());
    c = std::move(b); // frees c's own server, takes b's
    expect(!b && c.port() == port, "move assignment transfers the handle");

    bool done = c.shutdown(1000);
    while (!done) {
        c.poll(100);
        done = c.shutdown(1000);
    }
    expect(done, "shutdown of an idle server completes");

    if (failures != 0) {
        return EXIT_FAILURE;
    }
    std::puts("ok");
    return EXIT_SUCCESS;
}
