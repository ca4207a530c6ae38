"""``docker image …``/``docker container …``, ``inspect -f`` and ``--network`` (issue 12).

Expected texts and exit codes were printed by a real dockerd 20.10.24 (client 20.10.24) for
the same commands on dive's test-docker-image.tar.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import click
import pytest

from tests.docker.conftest import Result, fixture_path

Cli = Callable[..., Result]


pytestmark = pytest.mark.usefixtures("as_dockerd_20_10")


@pytest.fixture
def dive(cli: Cli) -> Cli:
    assert cli("docker", "load", "-i", fixture_path("dive/test-docker-image.tar")).code == 0
    assert cli("docker", "run", "-d", "--network", "none", "--name", "cc", "dive-test",
               "sleep", "1000").code == 0  # fmt: skip
    return cli


def _inspect(cli: Cli, *args: str) -> dict[str, str]:
    fmt = ("{{.HostConfig.NetworkMode}}|{{.Config.Hostname}}|{{.State.Status}}|"
           "{{.State.Error}}|{{.State.ExitCode}}|{{json .NetworkSettings.Networks}}")  # fmt: skip
    r = cli("docker", "inspect", "-f", fmt, *args)
    assert r.code == 0, r
    mode, host, status, error, code, nets = r.out.rstrip("\n").split("|")
    return {"mode": mode, "host": host, "status": status, "error": error, "code": code,
            "nets": ",".join(json.loads(nets))}  # fmt: skip


# --- management command groups -------------------------------------------------------------
def test_groups_reuse_the_same_command_objects() -> None:
    from overlaysim.cli.docker import docker

    assert isinstance(docker, click.Group)
    image, container = docker.commands["image"], docker.commands["container"]
    assert isinstance(image, click.Group) and isinstance(container, click.Group)
    assert set(image.commands) == {"inspect", "ls", "history", "rm", "save", "load", "tag"}
    assert set(container.commands) == {
        "inspect", "ls", "rm", "start", "stop", "create", "run", "exec", "diff", "export",
        "commit", "logs", "kill",
    }  # fmt: skip
    for group, name, top in (
        (image, "ls", "images"),
        (image, "rm", "rmi"),
        (container, "ls", "ps"),
        (container, "run", "run"),
        (container, "commit", "commit"),
    ):
        assert group.commands[name] is docker.commands[top]  # fmt: skip


def test_image_and_container_commands_work_like_the_top_level_ones(dive: Cli) -> None:
    assert dive("docker", "image", "ls").out == dive("docker", "images").out
    assert dive("docker", "container", "ls", "-a").out == dive("docker", "ps", "-a").out
    assert dive("docker", "image", "history", "-q", "dive-test").out.startswith("75ae28b8ebf8\n")
    assert dive("docker", "image", "tag", "dive-test", "again:1").code == 0
    assert dive("docker", "image", "rm", "again:1").out == "Untagged: again:1\n"
    r = dive("docker", "container", "run", "--network", "none", "--name", "c2", "dive-test",
             "sh", "-c", "echo hi > /tmp/x; cat /tmp/x")  # fmt: skip
    assert (r.code, r.out) == (0, "hi\n")
    assert dive("docker", "container", "diff", "c2").out == "C /tmp\nA /tmp/x\n"
    assert dive("docker", "container", "logs", "c2").out == "hi\n"
    assert dive("docker", "container", "commit", "c2", "c2:img").code == 0
    assert dive("docker", "container", "rm", "c2").out == "c2\n"
    assert dive("docker", "container", "exec", "cc", "true").code == 0
    assert dive("docker", "container", "kill", "cc").out == "cc\n"
    r = dive("docker", "container", "create", "--network", "none", "--name", "c3", "dive-test")
    assert r.code == 0 and dive("docker", "container", "start", "c3").out == "c3\n"
    assert dive("docker", "container", "stop", "c3").out == "c3\n"


def test_inspect_not_found_texts(dive: Cli) -> None:
    cases = [
        (("image", "inspect", "nosuch"), "[]\n", "Error: No such image: nosuch\n"),
        (("container", "inspect", "nosuch"), "[]\n", "Error: No such container: nosuch\n"),
        (("inspect", "nosuch"), "[]\n", "Error: No such object: nosuch\n"),
        (("image", "inspect", "cc"), "[]\n", "Error: No such image: cc\n"),
        (("container", "inspect", "dive-test"), "[]\n", "Error: No such container: dive-test\n"),
        (("inspect", "--type", "image", "cc"), "[]\n", "Error: No such image: cc\n"),
        (("image", "inspect", "-f", "{{.Id}}", "dive-test", "nosuch"),
         "sha256:75ae28b8ebf89b203319069ddcbecdf5c3838503bbebc0d0d85e4b8589c5de3a\n",
         "Error: No such image: nosuch\n"),
        (("container", "inspect", "-f", "{{.Name}}", "cc", "nosuch"), "/cc\n",
         "Error: No such container: nosuch\n"),
        (("image", "inspect", "-f", "{{.Id}}", "nosuch"), "\n", "Error: No such image: nosuch\n"),
    ]  # fmt: skip
    for args, out, err in cases:
        r = dive("docker", *args)
        assert (r.code, r.out, r.err) == (1, out, err), args


def test_inspect_format_is_a_go_template(dive: Cli) -> None:
    def f(fmt: str, name: str = "cc") -> Result:
        return dive("docker", "inspect", "-f", fmt, name)

    # no \n rewriting in inspect (the listings have it)
    assert f("{{.Name}}\\n|").out == "/cc\\n|\n"
    assert f("{{.Config.Entrypoint}} {{.Config.Cmd}} {{json .Config.Cmd}} {{.Config.OnBuild}} "
             "{{json .Config.Volumes}} {{.Config.Labels}}").out == (
        '[] [sleep 1000] ["sleep","1000"] [] null map[]\n')  # fmt: skip
    assert f("{{range .Config.Cmd}}<{{.}}>{{end}} {{index .Config.Cmd 0}} {{len .Config.Cmd}} "
             '{{printf "%q" .Name}} {{if .State.Running}}up{{else}}down{{end}} '
             '{{join .Config.Cmd ","}} {{upper .Name}}').out == (
        '<sleep><1000> sleep 2 "/cc" up sleep,1000 /CC\n')  # fmt: skip
    assert f("{{.Size}}", "dive-test").out == "1220598\n"
    r = f("{{.Nope}}")
    assert (r.code, r.out, r.err) == (
        1,
        "\n",
        "template parsing error: template: :1:2: "
        'executing "" at <.Nope>: map has no entry for key "Nope"\n',
    )
    r = f("{{.Nope.Sub}}")
    assert r.err.startswith('template parsing error: template: :1:7: executing "" at '
                            '<.Nope.Sub>: map has no entry for key "Nope"')  # fmt: skip
    r = f("{{.ID")  # a template that does not parse: exit 64
    assert (r.code, r.out, r.err) == (64, "", "template parsing error: template: :1: unclosed "
                                      "action\n")  # fmt: skip


# --- --network ----------------------------------------------------------------------------------
def test_network_mode_recorded_as_dockerd_does(dive: Cli) -> None:
    for name, args in (
        ("n1", ()),
        ("n2", ("--network", "bridge")),
        ("n3", ("--net", "host")),
        ("n9", ("--network", "none")),
        ("n8", ("--network", "NONE")),
    ):
        assert dive("docker", "create", "--name", name, *args, "dive-test", "true").code == 0
    got = {n: _inspect(dive, n) for n in ("n1", "n2", "n3", "n9", "n8")}
    # observed: no --network is "default" (the CLI's value), its endpoint is "bridge"
    assert [(g["mode"], g["nets"]) for g in got.values()] == [
        ("default", "bridge"), ("bridge", "bridge"), ("host", "host"), ("none", "none"),
        ("NONE", "NONE"),
    ]  # fmt: skip
    assert got["n3"]["host"] == "overlaysim"  # the machine's own name (/etc/hostname)
    assert got["n1"]["host"] != "overlaysim"
    r = dive("docker", "create", "--name", "n7", "--network", "container:cc", "dive-test")
    cid = dive("docker", "inspect", "-f", "{{.Id}}", "cc").out.strip()
    assert _inspect(dive, "n7")["mode"] == f"container:{cid}" and _inspect(dive, "n7")["nets"] == ""
    ps = dive("docker", "ps", "-a", "--format", "{{.Names}} {{.Networks}}").out.splitlines()
    assert sorted(ps) == ["cc none", "n1 bridge", "n2 bridge", "n3 host", "n7 ", "n8 NONE",
                          "n9 none"]  # fmt: skip
    assert dive("docker", "start", "n1", "n3").out == "n1\nn3\n"
    # the hosts file dockerd writes for the container: its own address only on a bridge
    hosts = dive("docker", "inspect", "-f", "{{.HostsPath}}", "cc").out.strip()
    r = dive("sh", "-c", f"cat {hosts}")
    assert r.out == ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                     "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
                     "ff02::2\tip6-allrouters\n")  # fmt: skip
    hosts = dive("docker", "inspect", "-f", "{{.HostsPath}}", "n1").out.strip()
    assert dive("sh", "-c", f"cat {hosts}").out == r.out + f"172.17.0.2\t{got['n1']['host']}\n"


def test_unknown_network_fails_at_start_like_dockerd(dive: Cli) -> None:
    r = dive("docker", "create", "--name", "n4", "--network", "nope", "dive-test", "true")
    assert r.code == 0  # dockerd 20.10 checks the network only when starting
    assert _inspect(dive, "n4") == {"mode": "nope", "host": _inspect(dive, "n4")["host"],
                                    "status": "created", "error": "", "code": "0",
                                    "nets": "nope"}  # fmt: skip
    r = dive("docker", "start", "n4")
    assert (r.code, r.out, r.err) == (
        1, "", "Error response from daemon: network nope not found\n"
        "Error: failed to start containers: n4\n",
    )  # fmt: skip
    got = _inspect(dive, "n4")
    assert (got["status"], got["error"], got["code"]) == ("created", "network nope not found",
                                                          "128")  # fmt: skip
    r = dive("docker", "run", "--name", "n5", "--network", "nope", "dive-test", "true")
    assert (r.code, r.out, r.err) == (
        125,
        "",
        "docker: Error response from daemon: network nope not found.\n",
    )
    assert _inspect(dive, "n5")["status"] == "created"
    r = dive("docker", "run", "-d", "--name", "n11", "--network", "nope", "dive-test", "true")
    assert r.code == 125 and len(r.out.strip()) == 64  # the ID is printed before the start
    assert r.err == "docker: Error response from daemon: network nope not found.\n"
    r = dive("docker", "run", "--rm", "--name", "rmx", "--network", "nope", "dive-test", "true")
    assert r.code == 125 and dive("docker", "ps", "-aq", "--format", "{{.Names}}").out.split(
    ).count("rmx") == 0  # --rm: the container is gone  # fmt: skip
    r = dive("docker", "create", "--network=", "dive-test", "true")
    assert (r.code, r.out, r.err) == (
        125,
        "",
        "docker: no name set for network.\nSee 'docker create --help'.\n",
    )
