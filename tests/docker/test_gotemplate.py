"""The Go template engine behind ``--format``/``-f`` and the CLI's tabwriter, in isolation.

Cases marked "observed" were printed by the docker 20.10.24 client (Go 1.19); the others
follow the ``text/template`` and ``fmt`` documentation.
"""

from __future__ import annotations

from typing import Any

import pytest

from overlaysim.docker.gofmtverbs import go_float, sprintf
from overlaysim.docker.gotemplate import TemplateError, TemplateParseError
from overlaysim.docker.gotemplate_exec import ExecError, Template
from overlaysim.docker.listfmt import tabwrite_text

DOC: dict[str, Any] = {
    "Name": "/cc", "Config": {"Cmd": ["sleep", "1000"], "Entrypoint": None, "Labels": {"a": "1"}},
    "State": {"Pid": 7274, "Running": True}, "Zero": 0, "Empty": [],
}  # fmt: skip


def run(fmt: str, data: Any = DOC, **kw: Any) -> str:
    return Template(fmt).execute(data, **kw)


@pytest.mark.parametrize(
    ("fmt", "out"),
    [
        ("{{.Config.Cmd}} {{.State.Pid}} {{.State.Running}}", "[sleep 1000] 7274 true"),
        ("{{.Config.Labels}} {{json .Config.Labels}}", 'map[a:1] {"a":"1"}'),
        ("{{.Config.Entrypoint}}", "<nil>"),  # untyped null; inspect passes a type hint
        ("{{.Nope}}", "<no value>"),
        ("{{if .Zero}}a{{else if .Empty}}b{{else}}c{{end}}", "c"),
        ("{{range $i, $e := .Config.Cmd}}{{$i}}={{$e}};{{end}}", "0=sleep;1=1000;"),
        ("{{range .Empty}}x{{else}}none{{end}}", "none"),
        ("{{range .Config.Cmd}}{{.}}{{break}}{{end}}", "sleep"),
        ("{{with .State}}{{.Pid}}{{end}}", "7274"),
        ("{{$x := .Name}}{{$x = upper $x}}{{$x}}", "/CC"),
        ("{{.Name | upper | printf \"<%s>\"}}", "</CC>"),
        ("{{- \" a \" -}}  {{/* comment */}} x", " a  x"),
        ("{{and 1 0}} {{or 0 \"\" \"z\"}} {{not .Zero}} {{eq .Name \"/x\" \"/cc\"}}",
         "0 z true true"),
        ("{{len .Name}} {{index .Config.Cmd 1}} {{slice .Name 1}}", "3 1000 cc"),
        ("{{print 1 2 \"a\" 3}}|{{println \"x\" 1}}", "1 2a3|x 1\n"),
        ("{{title \"up 2 minutes\"}}|{{pad \"x\" 1 2}}|{{pad \"\" 1 2}}|{{truncate \"abc\" 2}}",
         "Up 2 Minutes| x  ||ab"),  # observed (title, pad of "" is "")
        ("{{split \"cc\" \"c\"}} {{join (split \"a,b\" \",\") \"+\"}}", "[  ] a+b"),  # observed
    ],
)  # fmt: skip
def test_templates(fmt: str, out: str) -> None:
    assert run(fmt) == out


def test_typed_nils_print_as_their_go_type() -> None:
    # observed with docker inspect: a nil slice prints [], a nil map map[], a nil pointer <nil>
    kinds = {"Entrypoint": "slice", "Labels": "map"}.get
    data = {"Entrypoint": None, "Labels": None, "Health": None}
    assert run("{{.Entrypoint}} {{.Labels}} {{.Health}} {{json .Entrypoint}}", data,
               nil_kind=lambda k: kinds(k, "ptr")) == "[] map[] <nil> null"  # fmt: skip


@pytest.mark.parametrize(
    ("fmt", "err"),
    [
        ("{{.ID", "template: :1: unclosed action"),  # observed
        ("{{.ID}}{{end}}", "template: :1: unexpected {{end}}"),  # observed
        ("{{nofunc .ID}}", 'template: :1: function "nofunc" not defined'),  # observed
        ("{{if .ID}}x", "template: :1: unexpected EOF"),  # observed
        ('{{"a\nb"}}', "template: :1: unterminated quoted string"),  # observed
        ("{{$y}}", 'template: :1: undefined variable "$y"'),
        ("{{break}}", "template: :1: {{break}} outside {{range}}"),
    ],
)  # fmt: skip
def test_parse_errors(fmt: str, err: str) -> None:
    with pytest.raises(TemplateParseError) as e:
        Template(fmt)
    assert str(e.value) == err


def test_execution_errors_name_the_node_and_its_position() -> None:
    with pytest.raises(ExecError) as e:
        run("ab\n{{.Name}} {{.Nope.Sub}}", missingkey_error=True)
    assert str(e.value) == (  # Go reports a chain at its second field: ".Sub", byte 17 of line 2
        'template: :2:17: executing "" at <.Nope.Sub>: map has no entry for key "Nope"'
    )
    assert e.value.partial == "ab\n/cc "
    with pytest.raises(TemplateError, match=r"error calling index: index out of range: 5"):
        run("{{index .Config.Cmd 5}}")
    with pytest.raises(TemplateError, match=r"can't evaluate field Foo in type string"):
        run("{{.Name.Foo}}")
    with pytest.raises(TemplateError, match=r"wrong number of args for upper: want 1 got 2"):
        run('{{upper "a" "b"}}')


def test_printf_and_float_formatting() -> None:
    assert sprintf("%-6s|%5d|%05d|%x|%q|%t|%v|%%", ["ab", 42, -7, 255, "a\tb", True, [1, "x"]]) == (
        'ab    |   42|-0007|ff|"a\\tb"|true|[1 x]|%'
    )
    assert sprintf("%d %s", ["x"]) == "%!d(string=x) %!s(MISSING)"
    assert sprintf("%s", ["a", 1]) == "a%!(EXTRA int=1)"
    assert [go_float(x) for x in (1.5e-7, 1e21, 123456.0, 0.0001, 2.5)] == [
        "1.5e-07", "1e+21", "123456", "0.0001", "2.5",
    ]  # fmt: skip


def test_tabwriter_blocks_of_columns() -> None:
    # observed: `docker images --format 'table {{.Repository}}\t{{.Tag}}\n{{.ID}}\t{{.Size}}\t
    # {{.Digest}}\nx{{.Tag}}'`: a line without tabs ends a block of aligned columns
    text = ("REPOSITORY\tTAG\nIMAGE ID\tSIZE\tDIGEST\nxTAG\n"
            "dive-test\tlatest\n75ae28b8ebf8\t1.22MB\t<none>\nxlatest\n")  # fmt: skip
    assert tabwrite_text(text, 10, 3) == (
        "REPOSITORY   TAG\nIMAGE ID     SIZE      DIGEST\nxTAG\n"
        "dive-test      latest\n75ae28b8ebf8   1.22MB    <none>\nxlatest\n"
    )
