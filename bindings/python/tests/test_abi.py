"""The ctypes mirror in chat/_lib.py against include/chat.h: struct fields
(names, order, types, and with a C compiler, offsets and sizes), constants,
and the function list. Skipped where the header is not around (an installed
package)."""

import ctypes
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from helpers import chat

from chat import _lib, errors


def find_header():
    folder = os.path.dirname(os.path.abspath(__file__))
    while True:
        path = os.path.join(folder, "include", "chat.h")
        if os.path.isfile(path):
            return path
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


HEADER = find_header()

STRUCTS = {
    "ChatConfig": _lib.ChatConfig,
    "ChatPollFd": _lib.ChatPollFd,
    "ChatEvent": _lib.ChatEvent,
    "ChatStats": _lib.ChatStats,
}

SCALARS = {
    "uint8_t": ctypes.c_uint8,
    "int16_t": ctypes.c_int16,
    "uint16_t": ctypes.c_uint16,
    "int": ctypes.c_int,
    "int32_t": ctypes.c_int32,
    "uint32_t": ctypes.c_uint32,
    "int64_t": ctypes.c_int64,
    "uint64_t": ctypes.c_uint64,
    "size_t": ctypes.c_size_t,
    "uintptr_t": ctypes.c_size_t,
}

POINTERS = (ctypes.c_char_p, ctypes.c_void_p)


def strip_comments(text):
    return re.sub(r"//[^\n]*", "", re.sub(r"/\*.*?\*/", "", text, flags=re.S))


def header_structs(text):
    """{name: [(c_type, field)]} for every `typedef struct Name {...} Name;`
    and `struct Name {...};`."""
    out = {}
    for m in re.finditer(r"(?:typedef\s+)?struct\s+(\w+)\s*\{(.*?)\}\s*\w*\s*;", text, flags=re.S):
        fields = []
        for decl in m.group(2).split(";"):
            decl = " ".join(decl.split())
            if not decl:
                continue
            dm = re.fullmatch(r"(.*?)\s*(\**)\s*(\w+)", decl)
            ctype = (dm.group(1) + " " + dm.group(2)).strip()
            fields.append((ctype, dm.group(3)))
        out[m.group(1)] = fields
    return out


def header_functions(text):
    """{name: (return type, [parameter types])} for every `chat_*(...)`
    prototype, types with spaces normalised and names dropped."""
    out = {}
    pattern = r"^[ \t]*((?:const\s+)?(?:struct\s+)?\w+[\s\*]*?)\b(chat_\w+)\s*\(([^)]*)\)\s*;"
    for m in re.finditer(pattern, text, flags=re.M):
        ret = " ".join(m.group(1).replace("*", " * ").split())
        params = []
        for decl in m.group(3).split(","):
            decl = " ".join(decl.replace("*", " * ").split())
            if decl in ("", "void"):
                continue
            # Drop the parameter's name: the last word after the type.
            params.append(decl.rsplit(" ", 1)[0])
        out[m.group(2)] = (ret, params)
    return out


def ctypes_for(ctype):
    """The ctypes type the binding must declare for a C type, or a tuple of
    acceptable ones."""
    base = ctype.replace("const ", "").replace("struct ", "").strip()
    if base == "void":
        return None
    if base == "ChatLogFn":
        return _lib.ChatLogFn
    if base.endswith("*"):
        pointee = base[:-1].strip()
        if pointee in ("char", "uint8_t"):
            # Strings, and payloads passed as bytes.
            return ctypes.c_char_p
        if pointee in ("ChatServer", "void"):
            return ctypes.c_void_p
        if pointee in STRUCTS:
            return ctypes.POINTER(STRUCTS[pointee])
        return ctypes.POINTER(SCALARS[pointee])
    return SCALARS[base]


def header_constants(text):
    """{NAME: int} for `#define CHAT_X value` and `CHAT_X = value` (enums)."""
    consts = {}
    for m in re.finditer(r"#define\s+(CHAT_\w+)\s+\(?\s*(-?\s*\d+)\s*\)?", text):
        consts[m.group(1)] = int(m.group(2).replace(" ", ""))
    for m in re.finditer(r"\b(CHAT_\w+)\s*=\s*\(?\s*(-?\s*\d+)", text):
        consts.setdefault(m.group(1), int(m.group(2).replace(" ", "")))
    return consts


@unittest.skipUnless(HEADER, "include/chat.h not found")
class HeaderTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(HEADER, encoding="utf-8") as f:
            cls.text = strip_comments(f.read())

    def test_structs_match_field_by_field(self):
        structs = header_structs(self.text)
        for name, cls in STRUCTS.items():
            with self.subTest(struct=name):
                self.assertIn(name, structs)
                c_fields = structs[name]
                py_fields = cls._fields_
                self.assertEqual([f for _, f in c_fields], [f for f, _ in py_fields])
                for (ctype, field), (_, pytype) in zip(c_fields, py_fields):
                    if "*" in ctype:
                        self.assertIn(pytype, POINTERS + (ctypes.POINTER(ctypes.c_uint8),), field)
                    else:
                        base = ctype.replace("const ", "").strip()
                        self.assertIs(pytype, SCALARS[base], "%s.%s is %s" % (name, field, ctype))

    def test_constants_match(self):
        consts = header_constants(self.text)
        ours = {"CHAT_" + n: v for n, v in vars(errors).items() if re.fullmatch(r"(OK|ERR_\w+)", n)}
        ours.update({"CHAT_" + n: getattr(_lib, n) for n in dir(_lib) if re.fullmatch(r"(POLL|EVENT|LOG)_\w+", n)})
        for name, value in ours.items():
            self.assertEqual(consts.get(name), value, name)
        # Every error code in the header has a Python constant.
        for name, value in consts.items():
            if name.startswith("CHAT_ERR_"):
                self.assertEqual(ours.get(name), value, "missing in chat/errors.py: %s" % name)

    def test_every_function_is_declared(self):
        declared = {name for name, _, _ in _lib._PROTOTYPES}
        in_header = set(re.findall(r"\b(chat_\w+)\s*\(", self.text))
        self.assertEqual(declared, in_header)
        for name, argtypes, restype in _lib._PROTOTYPES:
            fn = getattr(_lib.lib(), name)
            self.assertEqual(fn.argtypes, argtypes, name)
            self.assertEqual(fn.restype, restype, name)

    def test_every_prototype_matches_the_header(self):
        functions = header_functions(self.text)
        self.assertEqual(set(functions), {name for name, _, _ in _lib._PROTOTYPES})
        for name, argtypes, restype in _lib._PROTOTYPES:
            with self.subTest(function=name):
                ret, params = functions[name]
                self.assertEqual(restype, ctypes_for(ret), "%s returns %s" % (name, ret))
                self.assertEqual(len(argtypes), len(params), "%s(%s)" % (name, ", ".join(params)))
                for i, (ours, theirs) in enumerate(zip(argtypes, params)):
                    self.assertEqual(ours, ctypes_for(theirs), "%s argument %d is %s" % (name, i, theirs))

    @unittest.skipUnless(shutil.which("cc"), "no C compiler")
    def test_offsets_and_sizes_match_the_c_compiler(self):
        lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "%s"' % HEADER, "int main(void) {"]
        for name, cls in STRUCTS.items():
            lines.append('printf("%s %%zu\\n", sizeof(%s));' % (name, name))
            for field, _ in cls._fields_:
                lines.append('printf("%s.%s %%zu\\n", offsetof(%s, %s));' % (name, field, name, field))
        lines += ["return 0;", "}"]
        with tempfile.TemporaryDirectory() as tmp:
            src, exe = os.path.join(tmp, "layout.c"), os.path.join(tmp, "layout")
            with open(src, "w") as f:
                f.write("\n".join(lines))
            subprocess.run(["cc", "-o", exe, src], check=True, timeout=60)
            out = subprocess.run([exe], check=True, capture_output=True, text=True, timeout=10).stdout
        c_layout = dict(line.split() for line in out.splitlines())
        for name, cls in STRUCTS.items():
            self.assertEqual(int(c_layout[name]), ctypes.sizeof(cls), "sizeof(%s)" % name)
            for field, _ in cls._fields_:
                key = "%s.%s" % (name, field)
                self.assertEqual(int(c_layout[key]), getattr(cls, field).offset, key)


class LibraryLookupTest(unittest.TestCase):
    def test_a_wrong_chat_lib_is_reported(self):
        old = os.environ.get("CHAT_LIB")
        os.environ["CHAT_LIB"] = "/nonexistent/libchat.so"
        try:
            with self.assertRaises(chat.LibraryNotFoundError) as cm:
                _lib.find_library()
            self.assertIn("/nonexistent/libchat.so", str(cm.exception))
        finally:
            if old is None:
                del os.environ["CHAT_LIB"]
            else:
                os.environ["CHAT_LIB"] = old


if __name__ == "__main__":
    unittest.main()
