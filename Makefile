# Builds and installs libchat for C and C++ programs with nothing but cargo
# and a C toolchain:
#
#   make                                  # build (release)
#   make install PREFIX=/usr/local        # then `sudo ldconfig` for a system prefix
#   make install PREFIX=/usr LIBDIR=/usr/lib/x86_64-linux-gnu DESTDIR=/tmp/stage
#   make uninstall PREFIX=/usr/local      # the same variables as install
#
# What it installs (README.md, "Installing", says what each file is for):
#   $(LIBDIR)/libchat.so.X.Y.Z, with SONAME libchat.so.X, and the links
#   libchat.so.X and libchat.so; $(LIBDIR)/libchat.a; $(INCLUDEDIR)/chat.h
#   and chat.hpp; $(PKGCONFIGDIR)/chat.pc and chat-static.pc;
#   $(CMAKEDIR)/chatConfig.cmake and chatConfigVersion.cmake;
#   $(BINDIR)/chat_server and chat_client.
#
# The shared library gets its SONAME from a `cargo rustc` link argument, in
# a target directory of its own ($(CARGO_TARGET_DIR)/dist): the one that
# `cargo build` fills keeps a libchat.so without a SONAME, which the
# in-tree tests link by path. `pip install ./bindings/python` runs the very
# same command, so one build serves both.

# The one version, from Cargo.toml ([workspace.package]).
VERSION := $(shell sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml)
ifeq ($(VERSION),)
$(error cannot read the version from [workspace.package] in Cargo.toml)
endif
# X.Y.Z without a pre-release or build suffix, and X.
VERSION_NUMBER := $(firstword $(subst -, ,$(subst +, ,$(VERSION))))
MAJOR := $(firstword $(subst ., ,$(VERSION_NUMBER)))
SONAME := libchat.so.$(MAJOR)
REALNAME := libchat.so.$(VERSION_NUMBER)

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= bin
LIBDIR ?= lib
INCLUDEDIR ?= include
# A directory given relative (LIBDIR=lib/x86_64-linux-gnu) is under PREFIX.
absolute = $(if $(filter /%,$(1)),$(1),$(PREFIX)/$(1))
override BINDIR := $(call absolute,$(BINDIR))
override LIBDIR := $(call absolute,$(LIBDIR))
override INCLUDEDIR := $(call absolute,$(INCLUDEDIR))
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR ?= $(LIBDIR)/cmake/chat

CARGO ?= cargo
CARGO_TARGET_DIR ?= target
INSTALL ?= install
# Where `cargo build --release` puts the programs, and where the library
# with its SONAME is built.
RELEASE_DIR := $(CARGO_TARGET_DIR)/release
DIST_TARGET_DIR := $(CARGO_TARGET_DIR)/dist
DIST_DIR := $(DIST_TARGET_DIR)/release

# The library build: one rustc run gives libchat.so (with its SONAME) and
# libchat.a, and prints the system libraries that libchat.a needs, which
# chat.pc and the CMake package list. bindings/python/setup.py passes the
# same arguments: keep the two alike.
LIB_BUILD = $(CARGO) $(1) rustc --release -p chat --lib --crate-type cdylib,staticlib \
	--target-dir $(DIST_TARGET_DIR) \
	-- -C link-arg=-Wl,-soname,$(SONAME) --print native-static-libs

.PHONY: all lib programs install uninstall clean help

all: lib programs

lib:
	$(call LIB_BUILD)
	@# Once more, now fresh: cargo replays rustc's note, and we keep the
	@# list it names (the build above printed it to the terminal).
	@# (A file of this shell's own first: two makes may run at once.)
	@tmp=$(DIST_DIR)/native-static-libs.$$$$; \
	$(call LIB_BUILD,--color never) 2>&1 \
		| sed -n 's/^note: native-static-libs: *//p' | tail -n 1 > $$tmp; \
	if test -s $$tmp; then mv $$tmp $(DIST_DIR)/native-static-libs; \
	else rm -f $$tmp; echo "make: rustc printed no native-static-libs note" >&2; exit 1; fi

programs:
	$(CARGO) build --release -p chat-cli --bins --target-dir $(CARGO_TARGET_DIR)

# The link flags of libchat.a, as -lNAME (pkg-config) and NAME (CMake).
NATIVE_LIBS = $$(cat $(DIST_DIR)/native-static-libs)
# In chat.pc, libdir and includedir under the prefix are written relative
# to it, so `pkg-config --define-prefix` and --define-variable work.
PC_LIBDIR := $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR := $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))
SUBSTITUTE = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@PC_LIBDIR@|$(PC_LIBDIR)|g' \
	-e 's|@PC_INCLUDEDIR@|$(PC_INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	-e 's|@REALNAME@|$(REALNAME)|g' -e 's|@SONAME@|$(SONAME)|g' \
	-e "s|@NATIVE_STATIC_LIBS@|$(NATIVE_LIBS)|g" \
	-e "s|@CMAKE_STATIC_LIBS@|$$(echo $(NATIVE_LIBS) | sed -e 's/^-l//' -e 's/ -l/;/g')|g"

# $(call configure,TEMPLATE,OUTPUT): the template with every @NAME@ filled in.
configure = @echo "sed $(1) > $(2)" && $(SUBSTITUTE) $(1) > $(2)

install: all
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(CMAKEDIR)
	$(INSTALL) -m 755 $(DIST_DIR)/libchat.so $(DESTDIR)$(LIBDIR)/$(REALNAME)
	ln -sf $(REALNAME) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libchat.so
	$(INSTALL) -m 644 $(DIST_DIR)/libchat.a $(DESTDIR)$(LIBDIR)/libchat.a
	$(INSTALL) -m 644 include/chat.h bindings/cpp/chat.hpp $(DESTDIR)$(INCLUDEDIR)/
	$(call configure,pkgconfig/chat.pc.in,$(DESTDIR)$(PKGCONFIGDIR)/chat.pc)
	$(call configure,pkgconfig/chat-static.pc.in,$(DESTDIR)$(PKGCONFIGDIR)/chat-static.pc)
	$(call configure,cmake/chatConfig.cmake.in,$(DESTDIR)$(CMAKEDIR)/chatConfig.cmake)
	$(call configure,cmake/chatConfigVersion.cmake.in,$(DESTDIR)$(CMAKEDIR)/chatConfigVersion.cmake)
	$(INSTALL) -m 755 $(RELEASE_DIR)/chat_server $(RELEASE_DIR)/chat_client $(DESTDIR)$(BINDIR)/

# Removes exactly what install put there (directories only if left empty).
uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/$(REALNAME) $(DESTDIR)$(LIBDIR)/$(SONAME) \
		$(DESTDIR)$(LIBDIR)/libchat.so $(DESTDIR)$(LIBDIR)/libchat.a \
		$(DESTDIR)$(INCLUDEDIR)/chat.h $(DESTDIR)$(INCLUDEDIR)/chat.hpp \
		$(DESTDIR)$(PKGCONFIGDIR)/chat.pc $(DESTDIR)$(PKGCONFIGDIR)/chat-static.pc \
		$(DESTDIR)$(CMAKEDIR)/chatConfig.cmake $(DESTDIR)$(CMAKEDIR)/chatConfigVersion.cmake \
		$(DESTDIR)$(BINDIR)/chat_server $(DESTDIR)$(BINDIR)/chat_client
	rmdir $(DESTDIR)$(CMAKEDIR) 2>/dev/null || true

clean:
	rm -rf $(DIST_TARGET_DIR)

help:
	@sed -n '1,/^$$/s/^# \{0,1\}//p' Makefile
