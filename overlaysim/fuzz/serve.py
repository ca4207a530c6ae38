"""``python -m overlaysim.fuzz.serve``: the simulator served over the fuzz protocol.

The reference server: ``overlaysim fuzz --against "python -m overlaysim.fuzz.serve"`` must
find no divergence, which tests the protocol end to end. :func:`serve` is the loop any
Python server can reuse with its own backend (see ``examples/fuzz_server_os.py`` for one
that does not import overlaysim at all).
"""

from __future__ import annotations

import errno
import json
import sys
from typing import IO, Any, Protocol

from overlaysim.fuzz import protocol as P


class Backend(Protocol):
    """What a server does per case; ``call`` runs one os-level call and returns its value."""

    def setup(self, layers: dict[str, Any], options: str, xattr_prefix: str) -> dict[str, Any]: ...

    def call(self, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any: ...

    def umount(self) -> None: ...

    def remount(self) -> None: ...

    def close(self) -> None: ...


def handle(backend: Backend, msg: Any) -> dict[str, Any]:
    """One request -> one reply; OSError becomes ``errno``, anything else ``error``."""
    if not isinstance(msg, dict):
        return {"error": "a request is a JSON object"}
    try:
        control = msg.get("control")
        if control == "setup":
            return {"ok": backend.setup(msg["layers"], msg.get("options", ""),
                                        msg.get("xattr_prefix", "trusted.overlay."))}  # fmt: skip
        if control in ("umount", "remount", "close"):
            getattr(backend, control)()
            return {"ok": None}
        if control is not None:
            return {"error": f"unknown control {control!r}"}
        name = msg.get("call")
        if name not in P.CALLS:
            return {"error": f"unknown call {name!r}"}
        args = P.decode_value(msg.get("args", []))
        kwargs = {k: P.decode_value(v) for k, v in msg.get("kwargs", {}).items()}
        if "ns" in kwargs:
            kwargs["ns"] = tuple(kwargs["ns"])
        return {"ok": P.encode_value(backend.call(name, args, kwargs))}
    except OSError as e:
        return P.errno_reply(e)
    except Exception as e:  # a server answers every request; the client stops on "error"
        return {"error": f"{type(e).__name__}: {e}"}


def serve(backend: Backend, name: str, stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """Greet, then answer each request line until end of input; close the last case."""
    stdout.write(P.dumps(P.greeting(name)))
    stdout.flush()
    try:
        for line in stdin:
            try:
                msg = json.loads(line)
            except ValueError:
                reply: dict[str, Any] = {"error": "request is not JSON"}
            else:
                reply = handle(backend, msg)
            stdout.write(P.dumps(reply))
            stdout.flush()
    finally:
        try:
            backend.close()
        except OSError:
            pass


class SimulatorBackend:
    """Each case in a fresh HostFS, mounted by :class:`~overlaysim.testing.simulator.SimOverlay`."""

    def __init__(self) -> None:
        self.mount: Any = None

    def setup(self, layers: dict[str, Any], options: str, xattr_prefix: str) -> dict[str, Any]:
        from overlaysim.testing.simulator import simulator_factory

        self.close()
        self.mount = simulator_factory(P.stack_from_json(layers), options)
        return {"mount": self.mount.mount_path, "upper": self.mount.upper_root,
                "work": self.mount.work_root}  # fmt: skip

    def _need(self) -> Any:
        if self.mount is None:
            raise OSError(errno.ENODEV, "no case set up")
        return self.mount

    def call(self, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        o = self._need().os
        return getattr(o, name)(*args, **kwargs)

    def umount(self) -> None:
        self._need().umount()

    def remount(self) -> None:
        self._need().remount()

    def close(self) -> None:
        if self.mount is not None:
            m, self.mount = self.mount, None
            m.close()


def main() -> None:
    serve(SimulatorBackend(), "overlaysim simulator", sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
