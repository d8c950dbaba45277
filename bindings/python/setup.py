"""Builds libchat with cargo and bundles it in the `chat` package.

setuptools-rust runs `cargo rustc` on the repository's crate (two folders
up) and copies the cdylib into the package as chat/libchat.abi3.so (a
plain C library: no Python ABI, so one wheel serves every CPython 3.8+);
chat/_lib.py loads it from there first. The version is the crate's, from
Cargo.toml, written into the wheel as chat/_version.py.

The cargo arguments are those of the Makefile's `lib` target, in the same
target directory ($CARGO_TARGET_DIR, or the repository's target/, then
dist/), so `make install` and `pip install` share one build of the library.
"""

import os
import runpy
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools_rust import Binding, RustExtension

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CARGO_TOML = os.path.join(REPO, "Cargo.toml")
if not os.path.isfile(CARGO_TOML):
    sys.exit(
        "setup.py: no %s: the package builds from a checkout of the chat repository "
        "(pip install ./bindings/python); it has no source distribution" % CARGO_TOML
    )

VERSION = runpy.run_path(os.path.join(HERE, "chat", "_cargo.py"))["workspace_version"](CARGO_TOML)
MAJOR = VERSION.split(".")[0]
CARGO_TARGET_DIR = os.path.abspath(os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target"))
TARGET_DIR = os.path.join(CARGO_TARGET_DIR, "dist")
# setuptools' own scratch (build/, chat.egg-info) goes there too, not into
# the source tree.
SCRATCH_DIR = os.path.join(CARGO_TARGET_DIR, "python")
os.makedirs(SCRATCH_DIR, exist_ok=True)

# Kept identical to LIB_BUILD in the Makefile (ELF platforms; elsewhere
# setuptools-rust adds the platform's own linker arguments).
CARGO_ARGS = ["-p", "chat", "--crate-type", "cdylib,staticlib", "--target-dir", TARGET_DIR]
RUSTC_FLAGS = []
if sys.platform.startswith(("linux", "freebsd", "netbsd", "openbsd")):
    RUSTC_FLAGS = ["-C", "link-arg=-Wl,-soname,libchat.so.%s" % MAJOR, "--print", "native-static-libs"]


class build_py_with_version(build_py):
    """Also writes chat/_version.py into the build, never into the source
    tree (where chat/_cargo.py reads Cargo.toml instead)."""

    def run(self):
        super().run()
        path = os.path.join(self.build_lib, "chat", "_version.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write('"""Written by setup.py from Cargo.toml."""\n\nVERSION = %r\n' % VERSION)


setup(
    version=VERSION,
    rust_extensions=[
        RustExtension(
            "chat.libchat",
            path=CARGO_TOML,
            binding=Binding.NoBinding,
            py_limited_api=True,
            args=CARGO_ARGS,
            rustc_flags=RUSTC_FLAGS,
            debug=False,
        )
    ],
    cmdclass={"build_py": build_py_with_version},
    options={
        "bdist_wheel": {"py_limited_api": "cp38"},
        "build": {"build_base": os.path.join(SCRATCH_DIR, "build")},
        "egg_info": {"egg_base": SCRATCH_DIR},
    },
)
