"""getfattr/setfattr on HostFS against fixed text.

The expected text below was produced by getfattr 2.5.1 (Debian's attr package) on a real
tmpfs with the same attributes, and agrees with getfattr.c's rules: names sorted by strcmp,
``"text"`` when at most one byte in eight is unprintable (a trailing NUL not counted),
otherwise ``0s`` base64; ``=`` in a name escaped as ``\\075``; ``-e hex`` gives ``0x``. It
runs whether or not the attr package is installed (test_differential.py compares with the
real tools when they are).
"""

from __future__ import annotations

from overlaysim import HostFS
from overlaysim.shell.xattr import decode_value, encode_value
from tests.shell.conftest import sim_shell

SETUP = ("mkdir /xa && touch /xa/f && setfattr -n user.text -v hello /xa/f && "
         "setfattr -n user.bin -v 0x0001020304 /xa/f && "
         "setfattr -n user.nul -v 0x6869000a00 /xa/f && setfattr -n user.empty /xa/f && "
         "setfattr -n trusted.overlay.origin -v 0x00fb1d000100 /xa/f && "
         "setfattr -n user.eq=x -v 'a\\b' /xa/f")  # fmt: skip

DUMP = """\
trusted.overlay.origin=0sAPsdAAEA
user.bin=0sAAECAwQ=
user.empty=""
user.eq\\075x="a\\\\b"
user.nul=0saGkACgA=
user.text="hello"

"""


def _run(cmd: str) -> tuple[int, bytes, bytes]:
    fs = HostFS()
    sh = sim_shell(fs, "/xa" if cmd.startswith("cd") else "/")
    assert sh.run_capture(SETUP)[0] == 0
    return sh.run_capture(cmd)


def test_dump_all_relative() -> None:
    assert _run("cd /xa; getfattr -d -m - f") == (0, ("# file: f\n" + DUMP).encode(), b"")


def test_absolute_path_is_stripped_with_one_notice() -> None:
    status, out, err = _run("getfattr -d -m - /xa/f /xa/f")
    assert status == 0
    assert out == ("# file: xa/f\n" + DUMP + "# file: xa/f\n" + DUMP).encode()
    assert err == b"getfattr: Removing leading '/' from absolute path names\n"


def test_text_encoding_keeps_raw_bytes_and_escapes_nul() -> None:
    _, out, _ = _run("cd /xa; getfattr -d -e text -m '^trusted' f")
    assert out == b'# file: f\ntrusted.overlay.origin="\\000\xfb\x1d\\000\x01"\n\n'


def test_names_only_and_only_values_and_missing() -> None:
    assert _run("cd /xa; getfattr -m - f")[1] == (
        b"# file: f\ntrusted.overlay.origin\nuser.bin\nuser.empty\nuser.eq\\075x\nuser.nul\n"
        b"user.text\n\n")  # fmt: skip
    assert _run("cd /xa; getfattr --only-values -n user.text f")[1] == b"hello"
    assert _run("cd /xa; getfattr -n user.nope f") == (1, b"", b"f: user.nope: No such attribute\n")


def test_default_pattern_is_user_namespace() -> None:
    out = _run("cd /xa; getfattr -d f")[1]
    assert b"trusted." not in out and b'user.text="hello"' in out


def test_encode_decode_round_trip() -> None:
    for value in (b"", b"y", b"\x00\x01\x02", b'quote"back\\slash', b"nl\nx\x00"):
        for enc in (None, "text", "hex", "base64"):
            text = encode_value(value, enc)
            if enc == "text" or (enc is None and text.startswith('"')):
                # text drops one trailing NUL, as getfattr does
                expect = value[:-1] if value.endswith(b"\x00") else value
                assert decode_value(text) == expect
            else:
                assert decode_value(text) == value


def test_setfattr_remove_and_errors() -> None:
    fs = HostFS()
    sh = sim_shell(fs)
    assert sh.run_capture("touch /f && setfattr -n user.a -v 1 /f && setfattr -x user.a /f")[0] == 0
    assert fs.os.listxattr("/f") == []
    assert sh.run_capture("setfattr -x user.a /f") == (1, b"", b"setfattr: /f: No such attribute\n")
    assert sh.run_capture("setfattr -n user.a -v 0xzz /f") == (1, b"", b"bad input encoding\n")
    assert sh.run_capture("setfattr -n user.a -v 0sQ /f") == (1, b"", b"bad input encoding\n")
    assert sh.run_capture("setfattr -n bad.ns -v 1 /f")[2] == (
        b"setfattr: /f: Operation not supported\n")  # fmt: skip
