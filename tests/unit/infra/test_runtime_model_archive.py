from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from infra.runtime.errors import UnsafeArchiveError
from infra.runtime.model_archive import pack_model, safe_extract


def test_pack_model_puts_members_at_the_archive_root_and_round_trips(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "xgboost-model").write_bytes(b"\x00\x01")
    (model / "sub" / "meta.json").write_text("{}")

    archive = pack_model(model, tmp_path / "out" / "model.tar.gz")

    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert names == {"xgboost-model", "sub", "sub/meta.json"}
    dest = safe_extract(archive, tmp_path / "extracted")
    assert (dest / "xgboost-model").read_bytes() == b"\x00\x01"
    assert (dest / "sub" / "meta.json").read_text() == "{}"


def test_pack_model_writes_gzip_at_the_default_level_with_duplicate_files_as_regular_members(tmp_path: Path) -> None:
    """Level 6 (gzip's default), not tarfile's 9: the header's XFL byte is 2 at level 9, 4 at level 1, 0 between
    (RFC 1952); two files with the same bytes (a model and its step checkpoint) stay two regular members."""
    model = tmp_path / "model"
    model.mkdir()
    weights = bytes(range(256)) * 64
    (model / "1_Step-86.zip").write_bytes(weights)
    (model / "model.zip").write_bytes(weights)

    archive = pack_model(model, tmp_path / "model.tar.gz")

    assert archive.read_bytes()[8] == 0
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert all(m.isfile() for m in members.values())
        stream = tar.extractfile(members["model.zip"])
        assert stream is not None and stream.read() == weights


def test_safe_extract_keeps_links_that_stay_inside(tmp_path: Path) -> None:
    archive = make_archive(tmp_path, [file_member("data/a.txt"), symlink("data/link", "a.txt")])

    dest = safe_extract(archive, tmp_path / "dest")

    assert (dest / "data" / "link").read_text() == "x"


def file_member(name: str) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = 1
    return info, b"x"


def symlink(name: str, target: str) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info, None


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def make_archive(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    path = tmp_path / "model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.mark.parametrize(
    "member",
    [
        file_member("/etc/evil"),
        file_member("../evil"),
        file_member("ok/../../evil"),
        symlink("link", "/etc/passwd"),
        symlink("sub/link", "../../outside"),
        special("hard", tarfile.LNKTYPE, "../outside"),
        special("dev", tarfile.CHRTYPE),
        special("blk", tarfile.BLKTYPE),
        special("fifo", tarfile.FIFOTYPE),
    ],
    ids=["absolute", "dotdot", "nested-dotdot", "abs-symlink", "symlink-out", "hardlink-out", "chr", "blk", "fifo"],
)
def test_safe_extract_rejects_unsafe_members(tmp_path: Path, member: tuple[tarfile.TarInfo, bytes | None]) -> None:
    archive = make_archive(tmp_path, [file_member("fine.txt"), member])
    dest = tmp_path / "dest"

    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, dest)

    assert not (dest / "fine.txt").exists()
    assert not (tmp_path / "evil").exists()


def test_safe_extract_rejects_a_file_that_is_not_a_tar(tmp_path: Path) -> None:
    path = tmp_path / "model.tar.gz"
    path.write_bytes(b"not a tar")

    with pytest.raises(UnsafeArchiveError):
        safe_extract(path, tmp_path / "dest")
