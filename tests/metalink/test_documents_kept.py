"""How much of a Metalink document is read and kept: never more than the parser accepts, and
only a few parsed documents at a time (an RPC daemon is handed a new one with every
``aria2.addMetalink``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from trioaria.base.errors import MetalinkError
from trioaria.metalink import follow, parse, plan


def _doc(name: str) -> bytes:
    return (
        '<metalink xmlns="urn:ietf:params:xml:ns:metalink">'
        f'<file name="{name}"><url>http://127.0.0.1:9/{name}</url></file></metalink>'
    ).encode()


def test_only_a_few_parsed_documents_are_kept(tmp_path: Path) -> None:
    for i in range(3 * plan._CACHED):
        path = tmp_path / f"{i:040x}.meta4"
        path.write_bytes(_doc(f"f{i}.bin"))
        assert plan.load_metalink(str(path)).files[0].name == f"f{i}.bin"
        path.unlink()  # as the RPC backend does with an upload
    assert len(plan._cache) <= plan._CACHED


def test_a_document_changed_on_disk_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "x.meta4"
    path.write_bytes(_doc("first.bin"))
    assert plan.load_metalink(str(path)).files[0].name == "first.bin"
    path.write_bytes(_doc("second-name.bin"))
    os.utime(path, ns=(1, 1))
    assert plan.load_metalink(str(path)).files[0].name == "second-name.bin"


def test_a_local_document_over_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan, "MAX_DOCUMENT_SIZE", 100)
    path = tmp_path / "big.meta4"
    path.write_bytes(b" " * 10_000 + _doc("x.bin"))
    with pytest.raises(MetalinkError):
        plan.load_metalink(str(path))


async def test_a_followed_document_is_read_only_up_to_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--follow-metalink=true reads the downloaded document from disk: one byte past the
    parser's limit at most, so that a hostile server's huge answer is never held whole."""
    monkeypatch.setattr(parse, "MAX_DOCUMENT_SIZE", 100)
    path = tmp_path / "huge.meta4"
    with open(path, "wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse
    with trio.fail_after(5):
        data = await follow._read_document(str(path))
    assert len(data) == 101
