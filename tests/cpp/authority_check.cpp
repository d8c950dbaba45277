// Checks of the rooms and host-authority part of bindings/cpp/chat.hpp that
// need no client: the new Config fields and their defaults, and the error
// each new Server call throws. Built and run by tests/cpp_host.rs; prints
// "ok" and exits 0 when every check passes.

#include "chat.hpp"
#include "check.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

namespace {

using check::expect;
using check::failures;
using check::loopback;

// Runs f, which must throw chat::Error with `code` and a message naming the
// C function that failed.
template <class F> void expect_error(int code, const char *function, F f) {
    check::expect_error(code, function, f, function);
}

} // namespace

int main() {
    const chat::Config d;
    expect(d.handshake_timeout_ms == 30000, "default handshake_timeout_ms is 30 s");
    expect(d.max_per_ip == 0 && d.rate_limit_frames == 0 && d.rate_limit_bytes == 0,
           "per-IP and rate limits are off by default");
    expect(d.rate_limit_grace_ms == 10000, "default rate_limit_grace_ms is 10 s");
    expect(d.max_rooms_per_client == 32 && d.max_members_per_room == 1024 && d.max_rooms == 1024,
           "default room limits");
    expect(!d.approve_registrations && !d.intercept_messages, "authority is off by default");
    expect(d.approval_timeout_ms == 10000, "default approval_timeout_ms is 10 s");

    chat::Config no_deadline = loopback();
    no_deadline.approve_registrations = true;
    no_deadline.approval_timeout_ms = 0;
    expect_error(CHAT_ERR_CONFIG, "chat_server_new", [&] { chat::Server s(no_deadline); });

    chat::Config strict = loopback();
    strict.approve_registrations = true;
    strict.intercept_messages = true;
    strict.max_per_ip = 4;
    strict.rate_limit_frames = 100;
    strict.rate_limit_bytes = 1u << 20;
    chat::Server s(strict);
    const std::string json = R"({"type":"note"})";

    expect_error(CHAT_ERR_UNKNOWN_ROOM, "chat_room_send", [&] { s.room_send("#none", json); });
    expect_error(CHAT_ERR_NOT_JSON_OBJECT, "chat_room_send", [&] { s.room_send("#none", "[1]"); });
    expect_error(CHAT_ERR_UNKNOWN_ROOM, "chat_room_members", [&] { (void)s.room_members("#none"); });
    expect_error(CHAT_ERR_UNKNOWN_CLIENT, "chat_room_remove", [&] { s.room_remove(7, "#none"); });
    expect_error(CHAT_ERR_UNKNOWN_CLIENT, "chat_approve", [&] { s.approve(7); });
    expect_error(CHAT_ERR_UNKNOWN_CLIENT, "chat_reject", [&] { s.reject(7, "no"); });
    expect_error(CHAT_ERR_UNKNOWN_TICKET, "chat_release", [&] { s.release(7); });
    expect_error(CHAT_ERR_UNKNOWN_TICKET, "chat_drop", [&] { s.drop(7); });
    expect_error(CHAT_ERR_INVALID, "chat_drop", [&] { s.drop(7, ""); });
    expect_error(CHAT_ERR_UNKNOWN_CLIENT, "chat_set_user_data", [&] { s.set_user_data(7, 1); });

    chat::Server moved(std::move(s));
    expect_error(CHAT_ERR_NULL, "chat_approve", [&] { s.approve(1); });
    expect_error(CHAT_ERR_NULL, "chat_room_members", [&] { (void)s.room_members("#r"); });

    expect(std::strcmp(chat::to_string(chat::Event::Kind::joined), "joined") == 0, "to_string(joined)");
    expect(std::strcmp(chat::to_string(chat::Event::Kind::parted), "parted") == 0, "to_string(parted)");
    expect(std::strcmp(chat::to_string(chat::Event::Kind::approval), "approval") == 0, "to_string(approval)");
    expect(std::strcmp(chat::to_string(chat::Event::Kind::intercepted), "intercepted") == 0,
           "to_string(intercepted)");

    if (failures != 0) {
        return EXIT_FAILURE;
    }
    std::puts("ok");
    return EXIT_SUCCESS;
}
