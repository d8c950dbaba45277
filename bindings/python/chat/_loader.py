"""Finds libchat and loads it, refusing a library of another version.

Where it looks, in order:
1. ``$CHAT_LIB``: the file, or a folder holding it. Set, it must be right:
   a wrong path is reported, not worked around.
2. The library bundled in this package (``pip install ./bindings/python``
   puts it beside this module).
3. A build of the repository this package sits in: ``$CARGO_TARGET_DIR``,
   else the nearest ``target/`` above the package, ``release`` or ``debug``
   (the newer of the two).
4. The system's loader: ``libchat.so.MAJOR`` (``make install``), through
   ``LD_LIBRARY_PATH`` and ld.so's cache.

Whichever it is, its ``chat_version()`` must be this package's version
(``chat.__version__``): ctypes declarations of one version do not fit
another's structs.
"""

import ctypes
import os
import sys

from . import _cargo
from .errors import LibraryNotFoundError, LibraryVersionError

# File name endings of a library setuptools-rust bundles (libchat.abi3.so,
# libchat.cpython-311-x86_64-linux-gnu.so, ...).
_BUNDLED_ENDINGS = (".so", ".dylib", ".pyd", ".dll")


def library_filename():
    """libchat's file name as cargo writes it on this platform."""
    if sys.platform == "darwin":
        return "libchat.dylib"
    if sys.platform == "win32":
        return "chat.dll"
    return "libchat.so"


def system_library_name(version):
    """The name an installed libchat of this major version has for the
    system's loader (its SONAME on ELF platforms)."""
    major = (version or "0").split(".")[0]
    if sys.platform == "darwin":
        return "libchat.%s.dylib" % major
    if sys.platform == "win32":
        return "chat.dll"
    return "libchat.so.%s" % major


def bundled_library():
    """The library a wheel put beside this module, or None."""
    folder = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(folder)):
        if name.startswith("libchat") and name.endswith(_BUNDLED_ENDINGS):
            return os.path.join(folder, name)
    return None


def _newest(paths):
    found = [p for p in paths if os.path.isfile(p)]
    return max(found, key=os.path.getmtime) if found else None


def _in_target(target, tried):
    """The newest of <target>/release and <target>/debug, so that whichever
    profile was built last wins."""
    candidates = [os.path.join(target, profile, library_filename()) for profile in ("release", "debug")]
    tried.extend(candidates)
    return _newest(candidates)


def _repository_build(tried):
    target_dir = os.environ.get("CARGO_TARGET_DIR")
    if target_dir:
        found = _in_target(os.path.abspath(target_dir), tried)
        if found:
            return found
    folder = os.path.dirname(os.path.abspath(__file__))
    while True:
        found = _in_target(os.path.join(folder, "target"), tried)
        if found:
            return found
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def find_library(tried=None):
    """(where, how): the path of libchat, or the name to hand the system's
    loader, and which of the four places (see the module) gave it:
    "CHAT_LIB", "bundled", "repository" or "system". The repository paths
    looked at are appended to `tried`."""
    explicit = os.environ.get("CHAT_LIB")
    if explicit:
        path = explicit
        if os.path.isdir(path):
            path = os.path.join(path, library_filename())
        if os.path.isfile(path):
            return os.path.abspath(path), "CHAT_LIB"
        raise LibraryNotFoundError("CHAT_LIB=%r: no such file %s" % (explicit, path))
    bundled = bundled_library()
    if bundled:
        return bundled, "bundled"
    found = _repository_build([] if tried is None else tried)
    if found:
        return found, "repository"
    return system_library_name(_cargo.package_version()), "system"


# How to get a library of the right version, by where the wrong one was.
_REMEDY = {
    "CHAT_LIB": "point CHAT_LIB at a build of this version, or unset it",
    "bundled": "reinstall the package: pip install ./bindings/python",
    "repository": "rebuild it: cargo build",
    "system": "install this version (make install), or pip install ./bindings/python",
}


def _check_version(cdll, where, how):
    expected = _cargo.package_version()
    try:
        chat_version = cdll.chat_version
    except AttributeError:
        raise LibraryVersionError("%s (%s) has no chat_version(): not libchat" % (where, how)) from None
    chat_version.argtypes = []
    chat_version.restype = ctypes.c_char_p
    raw = chat_version()
    found = raw.decode("utf-8", "replace") if raw is not None else None
    if expected is None:
        raise LibraryVersionError(
            "this chat package cannot tell its version (no chat/_version.py and no Cargo.toml "
            "three folders up), so it cannot check %s (libchat %s): install it with "
            "pip install ./bindings/python" % (where, found)
        )
    if found != expected:
        raise LibraryVersionError(
            "%s (%s) is libchat %s, but this chat package is %s: %s"
            % (where, how, found, expected, _REMEDY[how])
        )


def load():
    """(the loaded ctypes.CDLL, its path or name); raises
    LibraryNotFoundError, or LibraryVersionError for a library of another
    version."""
    tried = []
    where, how = find_library(tried)
    try:
        cdll = ctypes.CDLL(where)
    except OSError as e:
        if how == "system":
            raise LibraryNotFoundError(
                "cannot find libchat: CHAT_LIB is unset, none is bundled in this package, "
                "none of these repository builds exists:\n  %s\nand the system's loader has "
                "no %s (%s). Install the package with pip install ./bindings/python, build "
                "the library with cargo build, or set CHAT_LIB to its path"
                % ("\n  ".join(tried), where, e)
            ) from None
        raise LibraryNotFoundError("cannot load %s (%s): %s" % (where, how, e)) from None
    _check_version(cdll, where, how)
    return cdll, where
