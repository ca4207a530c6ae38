"""Parsing and expansion: quoting, globbing, lists, redirections and ``$?`` as dash does them.

These run on HostFS only; the outputs in comments are what dash prints for the same lines
(several are also covered against the real dash in test_differential.py).
"""

from __future__ import annotations

import pytest

from overlaysim import HostFS
from overlaysim.shell.executor import Shell
from overlaysim.shell.lexer import Lexer, ShellSyntaxError
from overlaysim.shell.parser import Parser
from tests.shell.conftest import sim_shell


@pytest.fixture
def sh() -> Shell:
    fs = HostFS()
    for name in ("a1", "a2", "b1", ".hid"):
        with fs.open(f"/{name}", "w") as f:
            f.write(name + "\n")
    fs.os.mkdir("/d")
    return sim_shell(fs)


def out(sh: Shell, cmd: str) -> str:
    return sh.run_capture(cmd)[1].decode()


def test_quotes(sh: Shell) -> None:
    assert out(sh, "echo 'a  b' \"c  d\" e\\ f") == "a  b c  d e f\n"
    assert out(sh, "x='1 2'; echo \"$x\" $x '$x'") == "1 2 1 2 $x\n"
    assert out(sh, "echo \"it's\" 'say \"hi\"' \\$HOME") == "it's say \"hi\" $HOME\n"
    assert out(sh, "echo a#b #comment") == "a#b\n"


def test_globs(sh: Shell) -> None:
    assert out(sh, "echo /a*") == "/a1 /a2\n"
    assert out(sh, "echo /[ab]1 /?2") == "/a1 /b1 /a2\n"
    assert out(sh, "echo /.h* /nomatch*") == "/.hid /nomatch*\n"  # unmatched stays as written
    assert out(sh, "echo '/a*' \"/a\"*") == "/a* /a1 /a2\n"  # quoted magic does not glob
    assert out(sh, "cd / && echo *1") == "a1 b1\n"


def test_and_or_lists(sh: Shell) -> None:
    assert out(sh, "true && echo y || echo n; false && echo y || echo n") == "y\nn\n"
    assert out(sh, "false; echo $?; true; echo $?; ! true; echo $?") == "1\n0\n1\n"
    assert out(sh, "ls /nope 2>/dev/null; echo $?") == "2\n"
    assert out(sh, "echo a &&\necho b") == "a\nb\n"


def test_redirections(sh: Shell) -> None:
    assert sh.run_capture("echo one > /f; echo two >> /f; cat /f") == (0, b"one\ntwo\n", b"")
    assert sh.run_capture("echo new > /f; cat < /f") == (0, b"new\n", b"")
    assert sh.run_capture("ls /nope > /g 2>&1; cat /g")[1] == (
        b"ls: cannot access '/nope': No such file or directory\n")  # fmt: skip
    assert sh.run_capture("ls /nope 2>&1 >/dev/null | wc -l")[1] == b"1\n"
    status, _, err = sh.run_capture("echo x > /nodir/f")
    assert (status, err) == (2, b"sh: 1: cannot create /nodir/f: Directory nonexistent\n")
    status, _, err = sh.run_capture("cat < /nope")
    assert (status, err) == (2, b"sh: 1: cannot open /nope: No such file\n")


def test_substitution_and_variables(sh: Shell) -> None:
    assert out(sh, "echo $(echo a; echo b) `echo c`") == "a b c\n"
    assert out(sh, "v=$(cat /a1); echo \"[$v]\" ${v}x") == "[a1] a1x\n"
    assert out(sh, "X=1 sh_var_test=2; echo $X$sh_var_test; unset_var=; echo \"[$nope]\"") == (
        "12\n[]\n")  # fmt: skip
    assert out(sh, "cd /d; pwd; cd -; cd; pwd") == "/d\n/\n/\n"  # no /root: cd fails
    assert out(sh, "mkdir /root; cd; pwd; cd /d/..; pwd") == "/root\n/\n"


def test_pipelines_feed_stdin(sh: Shell) -> None:
    assert out(sh, "ls / | grep a | sort -r | head -1") == "a2\n"
    assert out(sh, "printf 'b\\na\\n' | sort | wc -l") == "2\n"


def test_syntax_errors_and_unknown_commands(sh: Shell) -> None:
    assert sh.run_capture("echo a; ;") == (2, b"a\n", b'sh: 1: Syntax error: ";" unexpected\n')
    assert sh.run_capture("echo 'open")[0] == 2
    status, _, err = sh.run_capture("if true; then echo; fi")
    assert status == 2 and b"not supported" in err
    assert sh.run_capture("frobnicate x") == (127, b"", b"sh: 1: frobnicate: not found\n")
    assert sh.run_capture("/bin/echo hi") == (0, b"hi\n", b"")
    assert sh.run_capture("ls -Z") == (
        2, b"", b"ls: invalid option -- 'Z'\nTry 'ls --help' for more information.\n")  # fmt: skip
    assert sh.run_capture("rm")[0] == 1


def test_exit_stops_the_script(sh: Shell) -> None:
    assert sh.run_capture("echo a; exit 3; echo b") == (3, b"a\n", b"")
    assert sh.exited


def test_lexer_keeps_quoting_per_part() -> None:
    toks = list(Lexer("a'b'\"$c\" 2>&1").tokens())
    word = toks[0].word
    assert word is not None
    assert [(p.kind, p.text, p.quoted) for p in word.parts] == [
        ("lit", "a", False), ("lit", "b", True), ("var", "c", True)]
    assert (toks[1].op, toks[1].fd) == (">&", 2)
    with pytest.raises(ShellSyntaxError):
        list(Parser("echo a |").commands())
