// check.hpp: what the C++ wrapper checks (wrapper_check.cpp,
// authority_check.cpp) share: counted failures, one line each on stderr,
// the check that a call throws chat::Error with a given code, and a
// loopback config.
#pragma once

#include "chat.hpp"

#include <cstdio>
#include <cstring>

namespace check {

inline int failures = 0;

inline void expect(bool ok, const char *what) {
    if (!ok) {
        std::fprintf(stderr, "FAILED: %s\n", what);
        ++failures;
    }
}

// Runs f, which must throw chat::Error with `code` and a message: one that
// starts with `names` when that is given (the C function that failed).
template <class F> void expect_error(int code, const char *what, F f, const char *names = nullptr) {
    try {
        f();
        std::fprintf(stderr, "FAILED: %s: no exception\n", what);
        ++failures;
    } catch (const chat::Error &e) {
        if (e.code() != code) {
            std::fprintf(stderr, "FAILED: %s: code %d, wanted %d (%s)\n", what, e.code(), code, e.what());
            ++failures;
        } else if (e.what()[0] == '\0') {
            std::fprintf(stderr, "FAILED: %s: empty message\n", what);
            ++failures;
        } else if (names != nullptr && std::strncmp(e.what(), names, std::strlen(names)) != 0) {
            std::fprintf(stderr, "FAILED: %s: message \"%s\" does not name it\n", what, e.what());
            ++failures;
        }
    }
}

inline chat::Config loopback() {
    chat::Config cfg;
    cfg.listen_addr = "127.0.0.1:0";
    return cfg;
}

} // namespace check
