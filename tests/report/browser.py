"""Headless Chromium for the report tests: the DOM after the page's script ran, a screenshot,
and a real mouse click through the DevTools protocol over ``--remote-debugging-pipe``
(fd 3 carries our NUL-terminated JSON commands in, fd 4 the replies out: stdlib only)."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

TIMEOUT = 120


def chromium() -> str:
    """The browser, or skip: the Makefile's SYSTOOLS installs Debian's chromium for ``make test``."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium is not installed (`make test` installs it as root: apt-get install "
                "chromium); the HTML report is checked in a real browser")  # fmt: skip


def _flags(profile: Path) -> list[str]:
    return [chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
            "--hide-scrollbars", "--disable-extensions", f"--user-data-dir={profile}"]  # fmt: skip


def dump_dom(url: str, profile: Path) -> str:
    r = subprocess.run([*_flags(profile), "--dump-dom", url], capture_output=True, text=True,
                       timeout=TIMEOUT, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def screenshot(url: str, png: Path, profile: Path) -> None:
    subprocess.run([*_flags(profile), "--window-size=1400,1600", f"--screenshot={png}", url],
                   capture_output=True, timeout=TIMEOUT, check=True)  # fmt: skip


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node] = []
        self.text = ""

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self) -> list[Node]:
        out = [self]
        for c in self.children:
            out.extend(c.iter())
        return out

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        return [n for n in self.iter() if (tag is None or n.tag == tag)
                and (cls is None or cls in n.classes)
                and all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]  # fmt: skip

    def by_id(self, ident: str) -> Node:
        [n] = [n for n in self.iter() if n.attrs.get("id") == ident]
        return n

    def all_text(self) -> str:
        return self.text + "".join(c.all_text() for c in self.children)


_VOID = {"meta", "br", "img", "input", "link", "hr", "area", "base", "col", "embed", "source"}


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.cur.children.append(node)
        if tag not in _VOID:
            self.cur = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.cur.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.cur))

    def handle_endtag(self, tag: str) -> None:
        n: Node | None = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data: str) -> None:
        self.cur.text += data  # (text around children is joined: enough for the checks)


def parse(html: str) -> Node:
    b = _Builder()
    b.feed(html)
    b.close()
    return b.root


class Cdp:
    """A page driven over the DevTools pipe: evaluate JS, click at an element's centre."""

    def __init__(self, url: str, profile: Path) -> None:
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def fds() -> None:  # copies first: a pipe end may already be fd 3 or 4
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen([*_flags(profile), "--remote-debugging-pipe",
                                      "--window-size=1400,1000", url],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, close_fds=False,
                                     preexec_fn=fds)  # fmt: skip
        # close_fds=False: Python opens every fd close-on-exec, so the child gets 0-4 only
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.session = ""
        deadline = time.monotonic() + TIMEOUT
        while not self.session:
            pages = [t for t in self.call("Target.getTargets")["targetInfos"]
                     if t["type"] == "page"]  # fmt: skip
            if pages:
                self.session = self.call("Target.attachToTarget", targetId=pages[0]["targetId"],
                                         flatten=True)["sessionId"]  # fmt: skip
            elif time.monotonic() > deadline:
                raise AssertionError("chromium opened no page")
            else:
                time.sleep(0.2)
        while self.eval("document.body && document.body.getAttribute('data-ready')") != "1":
            if time.monotonic() > deadline:
                raise AssertionError("the page's script never finished")
            time.sleep(0.2)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise AssertionError("chromium did not answer")
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise AssertionError("chromium closed the DevTools pipe")
            self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)  # type: ignore[no-any-return]

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                assert "error" not in reply, reply
                return reply["result"]  # type: ignore[no-any-return]

    def eval(self, expr: str) -> Any:
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r["result"].get("value")

    def click(self, selector: str) -> None:
        """Scroll ``selector`` into view and press the left button at its centre."""
        box = self.eval(f"(function(){{var e=document.querySelector({json.dumps(selector)});"
                        "e.scrollIntoView({block:'center'});var r=e.getBoundingClientRect();"
                        "return [r.left+r.width/2,r.top+r.height/2];})()")  # fmt: skip
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                      clickCount=1)  # fmt: skip

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except AssertionError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)
