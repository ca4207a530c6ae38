"""``overlaysim image``: inspect, verify, flatten, convert, bundle, divergence, demo: real files.

Like umoci/crane/skopeo, these read archives and directories of the real disk; unlike them,
layers are never extracted to the disk to look at them: they are applied into an in-memory
HostFS. Every command that prints data takes ``--json``; errors are one line and exit 1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from overlaysim.demo_image import DEMO_TAG, write_demo_archive
from overlaysim.errors import UsageError
from overlaysim.image import digest as dg
from overlaysim.image.bundle import ExportPolicy, runc_spec_json, write_bundle
from overlaysim.image.compress import open_stream
from overlaysim.image.export import rootfs_tar
from overlaysim.image.findings import Findings
from overlaysim.image.formats import open_archive, select
from overlaysim.image.importer import How, ImportResult, import_image
from overlaysim.image.importer import divergence as compute_divergence
from overlaysim.image.layer import parse_layer
from overlaysim.image.limits import Limits
from overlaysim.image.model import ImageArchive, ImageRef
from overlaysim.image.save import (
    SaveOptions,
    oci_archive,
    oci_layout_files,
    save_v12,
    save_v25,
    write_oci_dir,
)
from overlaysim.image.source import Source
from overlaysim.image.verify import layer_blob, verify_image


def _emit(as_json: bool, data: Any, text: str) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=False))
    else:
        click.echo(text.rstrip("\n"))


@contextmanager
def _opened(path: str, lenient: bool) -> Iterator[tuple[ImageArchive, Source]]:
    arch, src = open_archive(path, Limits(), strict=not lenient)
    try:
        yield arch, src
    finally:
        src.close()


def _pick(arch: ImageArchive, ref: str | None, platform: str | None) -> ImageRef:
    return select(arch, ref, platform)


_common = [
    click.option("--image", "ref", default=None, help="Tag, ref name or image ID prefix to use."),
    click.option("--platform", default=None, help="os/arch[/variant] to select from an index."),
    click.option(
        "--lenient",
        is_flag=True,
        help="Neutralise hostile entries (with findings) instead of failing.",
    ),
]


def common(f: Any) -> Any:
    for opt in reversed(_common):
        f = opt(f)
    return f


@click.group("image")
def image() -> None:
    """Read, verify and convert image archives (docker save, OCI layouts, layer tars)."""


@image.command()
@click.argument("source", type=click.Path(exists=True))
@common
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--no-layers", is_flag=True, help="Skip reading layers (no entry counts).")
@click.option(
    "--differential",
    is_flag=True,
    help="Also read each layer with Python's tarfile and report where it disagrees with Go.",
)
def inspect(
    source: str,
    ref: str | None,
    platform: str | None,
    lenient: bool,
    as_json: bool,
    no_layers: bool,
    differential: bool,
) -> None:
    """Format, images, platforms, layers (digests, sizes, entries, whiteouts) and config."""
    with _opened(source, lenient) as (arch, src):
        images = [_pick(arch, ref, platform)] if (ref or platform) else arch.images
        out: dict[str, Any] = {"format": arch.format, "path": source, "images": []}
        lines = [f"format: {arch.format}"]
        findings = Findings()
        findings.extend(arch.findings)
        for im in images:
            info: dict[str, Any] = {
                "name": im.name(),
                "id": im.image_id,
                "repoTags": im.repo_tags,
                "refName": im.ref_name,
                "platform": im.platform,
                "manifestDigest": im.manifest_digest,
                "chainID": dg.chain_ids(im.diff_ids)[-1] if im.layers else None,
                "config": im.config.get("config"),
                "layers": [],
            }
            lines.append(f"image {im.name()}  id {im.image_id}  platform {im.platform}")
            for layer in im.layers:
                row = layer.to_json()
                if not no_layers:
                    with src.open(layer.path) as raw:
                        plan = parse_layer(
                            raw, src.limits, index=layer.index, strict=not lenient, capture=False
                        )
                    findings.extend(plan.findings)
                    if differential:
                        findings.extend(_differential(src, layer.path, layer.index))
                    row.update(
                        blobDigest=plan.blob_digest,
                        blobSize=plan.blob_size,
                        compression=plan.compression,
                        uncompressedSize=plan.uncompressed_size,
                        stats=plan.stats,
                        diffIDVerified=plan.diff_id == layer.diff_id,
                    )
                    s = plan.stats
                    lines.append(
                        f"  layer {layer.index}: {layer.diff_id}  {plan.compression} {plan.blob_size}B"
                        f"  entries {s['entries']} whiteouts {s['whiteouts']} opaque {s['opaques']}"
                    )
                else:
                    lines.append(f"  layer {layer.index}: {layer.diff_id}  {layer.path}")
                info["layers"].append(row)
            out["images"].append(info)
        out["findings"] = [f.to_json() for f in findings]
        lines += [f"finding: {f}" for f in findings]
        _emit(as_json, out, "\n".join(lines))


@image.command()
@click.argument("source", type=click.Path(exists=True))
@common
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def verify(
    source: str, ref: str | None, platform: str | None, lenient: bool, as_json: bool
) -> None:
    """Check every digest and size; exit 1 naming the first mismatch."""
    with _opened(source, lenient) as (arch, src):
        images = [_pick(arch, ref, platform)] if (ref or platform) else arch.images
        rows = []
        for im in images:
            checks = verify_image(src, im, src.limits, arch.findings)
            rows.append(
                {"image": im.name(), "id": im.image_id, "layers": [c.to_json() for c in checks]}
            )
        text = "\n".join(f"ok {r['image']} ({len(r['layers'])} layers)" for r in rows)
        _emit(as_json, {"ok": True, "images": rows}, text or "ok (no images)")


def _differential(src: Source, path: str, index: int) -> Findings:
    from overlaysim.image.differential import tarfile_differential

    lim = src.limits.but(max_layer_bytes=min(src.limits.max_layer_bytes, 256 << 20))
    with src.open(path) as raw:
        _, dec = open_stream(raw, lim, lim.max_layer_bytes)
        data = dec.read()
    return tarfile_differential(data, lim, index)


def _import(
    source: str, ref: str | None, platform: str | None, lenient: bool, how: How
) -> tuple[Any, ImportResult]:
    from overlaysim import HostFS

    with _opened(source, lenient) as (arch, src):
        im = _pick(arch, ref, platform)
        fs = HostFS()
        # no command here re-assembles a layer: skip the tar-split (a copy of every header)
        res = import_image(
            fs.os, src, im, "/image", how=how, strict=not lenient, keep_tarsplit=False
        )
        res.findings.extend(arch.findings)
        return fs, res


def _new_output(path: str) -> None:
    if os.path.lexists(path):
        raise UsageError(f"{path} already exists")


@image.command()
@click.argument("source", type=click.Path(exists=True))
@common
@click.option("-o", "--output", required=True, help="Where to write the rootfs tar.")
def flatten(source: str, ref: str | None, platform: str | None, lenient: bool, output: str) -> None:
    """Write the merged rootfs as ``docker export`` does (overlay merge of the layers)."""
    _new_output(output)
    fs, res = _import(source, ref, platform, lenient, "native")
    o = fs.os
    merged = "/merged"
    o.mkdir(merged)
    dirs = list(reversed(res.layer_dirs))
    if len(dirs) == 1:
        root = dirs[0]
    else:
        fs.mount("overlay", merged, "overlay", "lowerdir=" + ":".join(dirs))
        root = merged
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        rootfs_tar(o, root, f)
    click.echo(f"wrote {output}")


def _layer_bytes(src: Source) -> Any:
    def get(im: ImageRef, i: int) -> bytes:
        return layer_blob(src, im, i)

    return get


@image.command()
@click.argument("source", type=click.Path(exists=True))
@common
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Choice(["oci", "oci-archive", "docker-save", "docker-save-v1.2", "docker-save-v25"]),
    help="Target format.",
)
@click.option("-o", "--output", required=True, help="Output file (or directory for --to oci).")
@click.option("--all", "all_images", is_flag=True, help="Convert every image of the source.")
def convert(
    source: str,
    ref: str | None,
    platform: str | None,
    lenient: bool,
    to: str,
    output: str,
    all_images: bool,
) -> None:
    """Re-package an image (layers byte-identical, digests verified on the way)."""
    _new_output(output)
    with _opened(source, lenient) as (arch, src):
        images = arch.images if all_images else [_pick(arch, ref, platform)]
        lb = _layer_bytes(src)
        if to == "oci":
            blobs, index = oci_layout_files(images, lb)
            write_oci_dir(output, blobs, index)
        else:
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as f:
                if to == "oci-archive":
                    blobs, index = oci_layout_files(images, lb)
                    oci_archive(blobs, index, f)
                elif to == "docker-save-v1.2":
                    save_v12(images, lb, f, SaveOptions())
                else:
                    save_v25(images, lb, f, SaveOptions())
    click.echo(f"wrote {output} ({to}, {len(images)} image{'s' if len(images) != 1 else ''})")


@image.command()
@click.argument("source", type=click.Path(exists=True))
@common
@click.option("-o", "--output", required=True, help="Bundle directory to create.")
@click.option(
    "--runc-version",
    default="1.4",
    type=click.Choice(["1.1", "1.2", "1.3", "1.4", "1.5"]),
    help="runc whose `runc spec` to imitate.",
)
@click.option(
    "--cgroup-v1", is_flag=True, help="No cgroup namespace (runc spec on a cgroup v1 host)."
)
@click.option("--use-image-config", is_flag=True, help="Take args/env/cwd from the image config.")
@click.option("--devices", is_flag=True, help="Create device nodes (root only).")
@click.option("--keep-setid", is_flag=True, help="Keep setuid/setgid bits.")
def bundle(
    source: str,
    ref: str | None,
    platform: str | None,
    lenient: bool,
    output: str,
    runc_version: str,
    cgroup_v1: bool,
    use_image_config: bool,
    devices: bool,
    keep_setid: bool,
) -> None:
    """Create a runc bundle: rootfs/ (flattened image) and config.json as `runc spec` prints it."""
    _new_output(output)
    fs, res = _import(source, ref, platform, lenient, "flat")
    spec = runc_spec_json(
        runc_version, not cgroup_v1, res.image.config if use_image_config else None
    )
    policy = ExportPolicy(devices=devices, keep_setid=keep_setid)
    assert res.rootfs is not None
    n = write_bundle(fs.os, res.rootfs, output, spec, policy)
    click.echo(f"wrote {output} ({n} entries in rootfs)")
    for f in policy.findings:
        click.echo(f"finding: {f}", err=True)


@image.command()
@click.argument("source", type=click.Path(exists=True))
@common
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def divergence(
    source: str, ref: str | None, platform: str | None, lenient: bool, as_json: bool
) -> None:
    """Paths where Docker's per-layer overlay2 application and a flattening extractor disagree."""
    fs, res = _import(source, ref, platform, lenient, "both")
    divs = compute_divergence(fs.os, res)
    data = {
        "image": res.image.name(),
        "divergences": [d.to_json() for d in divs],
        "findings": [f.to_json() for f in res.findings],
    }
    text = "\n".join(str(d) for d in divs) or "no divergence"
    _emit(as_json, data, text)


@image.command()
@click.option("-o", "--output", required=True, help="Archive to create (real disk).")
@click.option("-t", "--tag", default=DEMO_TAG, show_default=True, help="Name:tag in the archive.")
def demo(output: str, tag: str) -> None:
    """Write the embedded default image as a `docker save` archive, ready for `docker load`.

    A small ubuntu-like base (top-level tree, bin -> usr/bin links) plus a layer adding
    hello.sh: the image the tour uses, so the same steps work without a registry.

    \b
    Example:
      overlaysim image demo -o demo.tar && overlaysim docker load -i demo.tar
    """
    _new_output(output)
    with open(output, "xb") as f:
        write_demo_archive(f, tag)
    click.echo(f"wrote {output} ({tag}, {os.path.getsize(output)} bytes)")
