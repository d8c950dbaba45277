"""The package's version, which is the crate's: every version of the
project comes from [workspace.package] in the repository's Cargo.toml.

A wheel carries it in chat/_version.py (written by setup.py); a source
checkout reads Cargo.toml three folders up. setup.py runs this file on its
own before anything is installed, so it imports only the standard library.
"""

import os
import re

_SECTION = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_VERSION = re.compile(r'^\s*version\s*=\s*"([^"]+)"')


def workspace_version(cargo_toml):
    """The `version` of [workspace.package] in the Cargo.toml at this path."""
    section = None
    with open(cargo_toml, encoding="utf-8") as f:
        for line in f:
            header = _SECTION.match(line)
            if header:
                section = header.group(1)
                continue
            found = _VERSION.match(line)
            if found and section == "workspace.package":
                return found.group(1)
    raise ValueError("%s has no version in [workspace.package]" % cargo_toml)


def package_version():
    """This package's version, or None when it cannot tell (a copy of the
    source package without its repository)."""
    try:
        from ._version import VERSION

        return VERSION
    except ImportError:
        pass
    here = os.path.dirname(os.path.abspath(__file__))
    cargo_toml = os.path.join(here, os.pardir, os.pardir, os.pardir, "Cargo.toml")
    try:
        return workspace_version(os.path.normpath(cargo_toml))
    except (OSError, ValueError):
        return None
