"""``--format`` of ``docker images``, ``docker ps`` and ``docker history`` (issue 12).

Every expected value below was printed by a real dockerd 20.10.24 (client 20.10.24, overlay2)
for the same image (dive's test-docker-image.tar) and the same commands; relative times
("7 years ago" there) depend on each machine's clock and are left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from tests.docker.conftest import Result

Cli = Callable[..., Result]


pytestmark = pytest.mark.usefixtures("as_dockerd_20_10")



def _cols(*names: str) -> str:
    """``{{.A}}\\t{{.B}}`` as typed on a shell command line (a backslash and a t)."""
    return "\\t".join("{{." + n + "}}" for n in names)


def _ok(r: Result) -> str:
    assert (r.code, r.err) == (0, ""), r
    return r.out


# --- docker images ---------------------------------------------------------------------------
def test_images_json_line_has_every_field_escaped_like_go(dive: Cli) -> None:
    line = _ok(dive("docker", "images", "--format", "{{json .}}"))
    # observed on dockerd 20.10.24 ("CreatedSince" aside): keys sorted, "<" escaped as \u003c,
    # Size with 3 significant digits but VirtualSize with 4
    doc = json.loads(line)
    assert doc.pop("CreatedSince").endswith(" years ago")
    assert doc == {
        "Containers": "N/A", "CreatedAt": "2018-12-28 20:44:23 +0000 UTC", "Digest": "<none>",
        "ID": "75ae28b8ebf8", "Repository": "dive-test", "SharedSize": "N/A", "Size": "1.22MB",
        "Tag": "latest", "UniqueSize": "N/A", "VirtualSize": "1.221MB",
    }  # fmt: skip
    assert '"Digest":"\\u003cnone\\u003e"' in line and line.endswith("}\n")


def test_images_fields_and_table_headers(dive: Cli) -> None:
    fmt = ("{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}} {{.CreatedAt}} {{.Digest}} "
           "{{.Containers}} {{.SharedSize}} {{.UniqueSize}} {{.VirtualSize}}")  # fmt: skip
    assert _ok(dive("docker", "images", "--format", fmt)) == (
        "dive-test:latest 75ae28b8ebf8 1.22MB 2018-12-28 20:44:23 +0000 UTC <none> N/A N/A N/A "
        "1.221MB\n"
    )
    out = _ok(dive("docker", "images", "--format", "table {{.Repository}}:{{.Tag}}\\t{{.ID}}"))
    assert out == "REPOSITORY:TAG     IMAGE ID\ndive-test:latest   75ae28b8ebf8\n"
    cols = _cols("Repository", "Tag", "ID", "CreatedAt", "Size", "Digest", "Containers",
                 "VirtualSize", "SharedSize", "UniqueSize")  # fmt: skip
    head, row = _ok(dive("docker", "images", "--format", "table " + cols)).splitlines()
    assert head == (
        "REPOSITORY   TAG       IMAGE ID       CREATED AT                      SIZE      DIGEST"
        "    CONTAINERS   SIZE      SHARED SIZE   UNIQUE SIZE"
    )
    assert row == (
        "dive-test    latest    75ae28b8ebf8   2018-12-28 20:44:23 +0000 UTC   1.22MB    <none>"
        "    N/A          1.221MB   N/A           N/A"
    )
    # "table" alone and no format are the default table
    default = _ok(dive("docker", "images"))
    assert _ok(dive("docker", "images", "--format", "table")) == default
    assert default.splitlines()[0] == "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE"


def test_images_raw_quiet_and_duplicates(dive: Cli) -> None:
    assert _ok(dive("docker", "images", "--format", "raw")) == (
        "repository: dive-test\ntag: latest\nimage_id: 75ae28b8ebf8\n"
        "created_at: 2018-12-28 20:44:23 +0000 UTC\nvirtual_size: 1.22MB\n\n"
    )
    assert _ok(dive("docker", "images", "-q", "--format", "raw")) == "image_id: 75ae28b8ebf8\n"
    # a custom format wins over -q
    assert _ok(dive("docker", "images", "-q", "--format", "table {{.ID}}")) == (
        "IMAGE ID\n75ae28b8ebf8\n"
    )
    dive("docker", "tag", "dive-test", "other:v1")
    # dockerd 20.10 lists an image once per tag, -q too (no de-duplication)
    assert _ok(dive("docker", "images", "-q")) == "75ae28b8ebf8\n75ae28b8ebf8\n"
    assert _ok(dive("docker", "images", "--format", "table {{.Repository}}", "other")) == (
        "REPOSITORY\nother\n"
    )
    assert _ok(dive("docker", "images", "--format", "table {{.Repository}}", "none")) == (
        "REPOSITORY\n"
    )


@pytest.mark.parametrize(
    ("fmt", "err"),
    [
        ("{{.Nope}}", 'template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in '
                      "type *formatter.imageContext"),
        ("table {{.ID}} {{.Nope}}", 'template: :1:10: executing "" at <.Nope>: can\'t evaluate '
                                    "field Nope in type *formatter.imageContext"),
        ("{{.ID}}\\n{{.Nope}}", 'template: :2:2: executing "" at <.Nope>: can\'t evaluate field '
                                "Nope in type *formatter.imageContext"),
        ("{{.ID.Foo}}", 'template: :1:5: executing "" at <.ID.Foo>: can\'t evaluate field Foo '
                        "in type string"),
        ("{{.ID", "template: :1: unclosed action"),
        ("{{.ID}}{{end}}", "template: :1: unexpected {{end}}"),
        ("{{nofunc .ID}}", 'template: :1: function "nofunc" not defined'),
        ("{{if .ID}}x", "template: :1: unexpected EOF"),
    ],
)  # fmt: skip
def test_images_template_errors(dive: Cli, fmt: str, err: str) -> None:
    r = dive("docker", "images", "--format", fmt)
    assert (r.code, r.out, r.err) == (1, "", f"template parsing error: {err}\n")


# --- docker ps ---------------------------------------------------------------------------------
@pytest.fixture
def running(dive: Cli) -> Cli:
    assert dive("docker", "run", "-d", "--network", "none", "--name", "cc", "dive-test",
                "sleep", "1000").code == 0  # fmt: skip
    return dive


def test_ps_json_and_every_column(running: Cli) -> None:
    doc = json.loads(_ok(running("docker", "ps", "--format", "{{json .}}")))
    for key in ("ID", "CreatedAt", "RunningFor", "Status"):
        assert doc.pop(key)
    # observed: {{json .}} computes Size too; Networks is the --network given
    assert doc == {
        "Command": '"sleep 1000"', "Image": "dive-test", "Labels": "", "LocalVolumes": "0",
        "Mounts": "", "Names": "cc", "Networks": "none", "Ports": "",
        "Size": "0B (virtual 1.22MB)", "State": "running",
    }  # fmt: skip
    cols = _cols("ID", "Image", "Command", "CreatedAt", "RunningFor", "Ports", "State", "Status",
                 "Size", "Names", "Labels", "Mounts", "Networks", "LocalVolumes")  # fmt: skip
    head = _ok(running("docker", "ps", "--format", "table " + cols)).splitlines()[0]
    assert re.split(r"\s{2,}", head) == [
        "CONTAINER ID", "IMAGE", "COMMAND", "CREATED AT", "CREATED", "PORTS", "STATE", "STATUS",
        "SIZE", "NAMES", "LABELS", "MOUNTS", "NETWORKS", "LOCAL VOLUMES",
    ]  # fmt: skip
    out = _ok(running("docker", "ps", "--format", '{{.Label "x"}}|{{.Names}}|{{.Command}}|'
                                                   "{{.Networks}}"))  # fmt: skip
    assert out == '|cc|"sleep 1000"|none\n'


def test_ps_headers_follow_go_template_functions(running: Cli) -> None:
    def ps(fmt: str) -> list[str]:
        return _ok(running("docker", "ps", "--format", fmt)).splitlines()

    assert ps('table {{.Names}}\\t{{.Label "x"}}') == ["NAMES     x", "cc        "]
    assert ps("table {{upper .Names}}\\t{{.Status}}")[0] == "NAMES     STATUS"
    assert ps("table {{upper .Names}}\\t{{.Status}}")[1].startswith("CC        Up ")
    assert ps("table {{json .}}")[0] == ""  # the header fails: an empty line
    assert ps("  table {{.Names}}") == ["table cc"]  # not a table: "table" must come first
    assert ps("tablex{{.Names}}") == ["xNAMES", "xcc"]
    head, row = ps('table {{truncate .Names 1}}|{{pad .Names 1 2}}|{{title .Status}}|'
                   '{{split .Names "c"}}')  # fmt: skip
    assert head == "NAMES| NAMES  |STATUS|NAMES"
    assert row.startswith("c| cc  |Up ") and row.endswith("|[  ]")
    assert ps('{{printf "%-8s|" .Names}}{{.Names | upper}}') == ["cc      |CC"]
    assert ps("table {{.Names}}\\n{{.State}}") == ["NAMES", "STATE", "cc", "running"]


def test_ps_size_raw_and_quiet(running: Cli) -> None:
    running("docker", "exec", "cc", "sh", "-c", "echo hi > /tmp/f; ln -s f /tmp/l")
    lines = _ok(running("docker", "ps", "-s")).splitlines()
    # observed on dockerd 20.10.24 after the same two writes: 3 + 1 bytes
    assert lines[0].endswith("NAMES     SIZE") and lines[1].endswith(
        "cc        4B (virtual 1.22MB)"
    )
    raw = _ok(running("docker", "ps", "--format", "raw")).splitlines()
    assert raw[1:3] == ["image: dive-test", 'command: "sleep 1000"']
    assert raw[4:] == ["state: running", raw[5], "names: cc", "labels:", "ports:", ""]
    assert raw[5].startswith("status: Up ")
    cid = _ok(running("docker", "ps", "-q"))
    assert _ok(running("docker", "ps", "-q", "--format", "raw")) == "container_id: " + cid


def test_ps_checks_the_format_before_listing(running: Cli) -> None:
    r = running("docker", "ps", "--format", "table {{.Names}} {{.Nope}}")
    assert (r.code, r.out) == (1, "")
    assert r.err == (
        'failed to execute template: template: :1:19: executing "" at <.Nope>: can\'t evaluate '
        "field Nope in type *formatter.ContainerContext\n"
    )
    r = running("docker", "ps", "--format", "{{.ID")
    assert (r.code, r.err) == (1, "failed to parse template: template: :1: unclosed action\n")
    # the check parses the format as typed; the listing turns \n into a newline first
    r = running("docker", "ps", "--format", '{{.Names}}{{"\\n"}}')
    assert (r.code, r.err) == (
        1,
        "template parsing error: template: :1: unterminated quoted string\n",
    )


# --- docker history ----------------------------------------------------------------------------
def test_history_json_fields_and_no_trunc(dive: Cli) -> None:
    rows = [json.loads(x) for x in _ok(dive("docker", "history", "--format", "{{json .}}",
                                            "dive-test")).splitlines()]  # fmt: skip
    assert len(rows) == 15 and all(r.pop("CreatedSince").endswith("years ago") for r in rows)
    assert rows[:2] == [
        {"Comment": "", "CreatedAt": "2018-12-28T20:44:23Z",
         "CreatedBy": "/bin/sh -c chmod +x /root/saved.txt", "ID": "75ae28b8ebf8",
         "Size": "6.41kB"},
        {"Comment": "", "CreatedAt": "2018-12-28T20:44:21Z",
         "CreatedBy": "/bin/sh -c cp /root/saved.txt /root/.data/sa…", "ID": "<missing>",
         "Size": "6.41kB"},
    ]  # fmt: skip
    out = _ok(dive("docker", "history", "--no-trunc", "--format",
                   "{{.ID}}|{{.CreatedBy}}|{{.Size}}", "dive-test"))  # fmt: skip
    assert out.splitlines()[:3] == [
        "sha256:75ae28b8ebf89b203319069ddcbecdf5c3838503bbebc0d0d85e4b8589c5de3a|"
        "/bin/sh -c chmod +x /root/saved.txt|6.41kB",
        "<missing>|/bin/sh -c cp /root/saved.txt /root/.data/saved.again2.txt|6.41kB",
        "<missing>|/bin/sh -c cp /root/saved.txt /tmp/saved.again1.txt|6.41kB",
    ]
    assert _ok(dive("docker", "history", "-q", "dive-test")).splitlines()[:2] == [
        "75ae28b8ebf8", "<missing>",
    ]  # fmt: skip


def test_history_not_human_and_errors(dive: Cli) -> None:
    row = json.loads(_ok(dive("docker", "history", "-H=false", "--format", "{{json .}}",
                              "dive-test")).splitlines()[0])  # fmt: skip
    assert (row["CreatedSince"], row["Size"]) == ("2018-12-28T20:44:23Z", "6405")
    lines = _ok(dive("docker", "history", "-H=false", "dive-test")).splitlines()
    assert lines[:2] == [
        "IMAGE          CREATED AT             CREATED BY                                      "
        "SIZE      COMMENT",
        "75ae28b8ebf8   2018-12-28T20:44:23Z   /bin/sh -c chmod +x /root/saved.txt             "
        "6405      ",
    ]
    r = dive("docker", "history", "--format", "{{.Nope}}", "dive-test")
    assert (r.code, r.err) == (
        1, 'template parsing error: template: :1:2: executing "" at <.Nope>: can\'t evaluate '
        "field Nope in type *image.historyContext\n",
    )  # fmt: skip
