"""aria2's output-path rules (trioaria/storage/naming.py)."""

from __future__ import annotations

import os
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.base.errors import ExitCode, FileExistsError_, StorageError
from trioaria.storage.naming import (
    OutputDecision,
    control_file_path,
    decide_output,
    name_from_url,
    renamed_path,
)

D = "/dl"


def _fs(files: AbstractSet[str], controls: AbstractSet[str] = frozenset()) -> dict[str, Any]:
    """Fake file system: data files and the data paths whose control file exists."""
    return {
        "exists": lambda p: p in files,
        "control_file_exists": lambda p: p in controls,
    }


def _decide(
    name: str,
    files: AbstractSet[str],
    controls: AbstractSet[str] = frozenset(),
    *,
    allow_overwrite: bool = False,
    auto_file_renaming: bool = True,
    continue_: bool = False,
    **extra: Any,
) -> OutputDecision:
    return decide_output(
        D,
        name,
        allow_overwrite=allow_overwrite,
        auto_file_renaming=auto_file_renaming,
        continue_=continue_,
        **_fs(files, controls),
        **extra,
    )


def test_new() -> None:
    assert _decide("f.bin", set()) == OutputDecision("/dl/f.bin", "new")


def test_control_file_resumes_without_c() -> None:
    d = _decide("f.bin", {"/dl/f.bin"}, {"/dl/f.bin"})
    assert d == OutputDecision("/dl/f.bin", "resume", control_file=True)


def test_defunct_control_file_starts_afresh() -> None:
    d = _decide("f.bin", set(), {"/dl/f.bin"})
    assert d == OutputDecision("/dl/f.bin", "new", stale_control_file=True)


def test_continue_on_existing_file() -> None:
    d = _decide("f.bin", {"/dl/f.bin"}, continue_=True, allow_overwrite=True)
    assert d == OutputDecision("/dl/f.bin", "resume")


def test_continue_with_longer_local_file_falls_through() -> None:
    # aria2 adjustFilename: -c only when outfile.size() <= total length.
    sizes = {"/dl/f.bin": 100}
    d = _decide(
        "f.bin", {"/dl/f.bin"}, continue_=True, file_size=sizes.__getitem__, total_length=50
    )
    assert d.action == "renamed"
    d = _decide(
        "f.bin", {"/dl/f.bin"}, continue_=True, file_size=sizes.__getitem__, total_length=100
    )
    assert d.action == "resume"


def test_overwrite() -> None:
    assert _decide("f.bin", {"/dl/f.bin"}, allow_overwrite=True) == OutputDecision(
        "/dl/f.bin", "overwrite"
    )


def test_renamed_first_free_number() -> None:
    files = {"/dl/f.tar.gz", "/dl/f.tar.1.gz", "/dl/f.tar.2.gz"}
    d = _decide("f.tar.gz", files)
    assert d == OutputDecision("/dl/f.tar.3.gz", "renamed", renamed_from="/dl/f.tar.gz")


def test_renamed_candidate_with_control_file_is_resumed() -> None:
    files = {"/dl/f.iso", "/dl/f.1.iso", "/dl/f.2.iso"}
    d = _decide("f.iso", files, {"/dl/f.2.iso"})
    assert d == OutputDecision("/dl/f.2.iso", "resume", control_file=True, renamed_from="/dl/f.iso")


def test_exists_without_renaming_is_exit_13() -> None:
    with pytest.raises(FileExistsError_) as info:
        _decide("f.bin", {"/dl/f.bin"}, auto_file_renaming=False)
    assert info.value.exit_code == ExitCode.FILE_ALREADY_EXISTS
    assert int(info.value.exit_code) == 13
    assert "File /dl/f.bin exists, but a control file(*.aria2) does not exist." in str(info.value)


def test_renaming_exhausted_is_exit_14() -> None:
    class Everything(set[str]):
        def __contains__(self, item: object) -> bool:
            return True

    with pytest.raises(StorageError) as info:
        _decide("f.bin", Everything())
    assert info.value.exit_code == ExitCode.FILE_RENAMING_FAILED
    assert int(info.value.exit_code) == 14
    assert str(info.value) == "File renaming failed: /dl/f.bin"


def test_renaming_reaches_9999() -> None:
    files = {"/dl/f.bin"} | {f"/dl/f.{i}.bin" for i in range(1, 9999)}
    assert _decide("f.bin", files).path == "/dl/f.9999.bin"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/d/file.ext", "/d/file.1.ext"),
        ("/d/file", "/d/file.1"),
        ("/d/.bashrc", "/d/.bashrc.1"),
        ("/d/.config.json", "/d/.config.1.json"),
        ("/d.x/file", "/d.x/file.1"),
        ("/d/a.tar.gz", "/d/a.tar.1.gz"),
        ("file.", "file.1."),
        (".hidden", ".hidden.1"),
    ],
)
def test_renamed_path(path: str, expected: str) -> None:
    assert renamed_path(path, 1) == expected


@pytest.mark.parametrize(
    ("directory", "name", "expected"),
    [
        ("/dl", "sub/f", "/dl/sub/f"),
        ("/dl/", "f", "/dl/f"),
        ("/", "f", "/f"),
        ("/dl", "/abs/f", "/dl/abs/f"),  # -o is always relative to -d
    ],
)
def test_out_is_relative_to_dir(directory: str, name: str, expected: str) -> None:
    d = decide_output(
        directory,
        name,
        allow_overwrite=False,
        auto_file_renaming=True,
        continue_=False,
        **_fs(set()),
    )
    assert d.path == expected


def test_empty_dir_is_cwd() -> None:
    d = decide_output(
        "", "f", allow_overwrite=False, auto_file_renaming=True, continue_=False, **_fs(set())
    )
    assert d.path == os.path.join(os.getcwd(), "f")


def test_control_file_path() -> None:
    assert control_file_path("/dl/f.bin") == "/dl/f.bin.aria2"


def test_real_filesystem(tmp_path: os.PathLike[str]) -> None:
    base = os.fspath(tmp_path)
    target = os.path.join(base, "f.txt")
    open(target, "wb").close()

    def decide(**kw: bool) -> OutputDecision:
        return decide_output(
            base,
            "f.txt",
            exists=os.path.exists,
            control_file_exists=lambda p: os.path.exists(control_file_path(p)),
            allow_overwrite=kw.get("allow_overwrite", False),
            auto_file_renaming=True,
            continue_=False,
        )

    assert decide().path == os.path.join(base, "f.1.txt")
    open(control_file_path(target), "wb").close()
    assert decide() == OutputDecision(target, "resume", control_file=True)


# --- name_from_url ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://host/dir/file.iso", "file.iso"),
        ("http://host/dir/file.iso?x=1&y=/z#frag", "file.iso"),
        ("http://host/", "index.html"),
        ("http://host", "index.html"),
        ("http://host/dir/", "index.html"),
        ("http://host/a%20b.txt", "a b.txt"),
        ("http://host/%E6%97%A5%E6%9C%AC.txt", "日本.txt"),
        ("http://host/a%2Fb", "a%2Fb"),  # a decoded '/' never makes a directory
        ("http://host/..%2F..%2Fetc%2Fpasswd", "..%2F..%2Fetc%2Fpasswd"),
        ("http://host/%2E%2E", "index.html"),
        ("http://host/a/..", "index.html"),
        ("http://host/.", "index.html"),
        ("http://host/x%00y", "x%00y"),
        ("http://host/x%0Ay", "x%0Ay"),
        ("http://host/%FF%FEbin", "%FF%FEbin"),  # not UTF-8: percent-encoded
        ("http://host/100%", "100%"),
        ("http://host/50%zz", "50%zz"),
        ("ftp://host/pub/file.bin;type=i", "file.bin"),
        ("sftp://user@host:22/home/u/f.tgz", "f.tgz"),
        ("http://[::1]:8080/v6.bin", "v6.bin"),
    ],
)
def test_name_from_url(url: str, expected: str) -> None:
    assert name_from_url(url) == expected


@given(st.text(max_size=40))
def test_name_from_url_is_a_safe_basename(tail: str) -> None:
    name = name_from_url("http://host/dir/" + tail)
    assert name
    assert "/" not in name
    assert name not in (".", "..")
    assert all(ord(c) >= 0x20 and c != "\x7f" for c in name)


def test_a_path_another_download_writes_is_renamed_never_resumed(tmp_path: Path) -> None:
    """aria2 shouldCancelDownloadForSafety: even with its control file, -c or
    --allow-overwrite, a file another running download writes is not ours: rename."""
    busy = {str(tmp_path / "f.bin"), str(tmp_path / "f.1.bin")}
    decision = decide_output(
        str(tmp_path), "f.bin", exists=lambda p: p.endswith("f.bin"), allow_overwrite=True,
        auto_file_renaming=True, continue_=True, control_file_exists=lambda p: True,
        in_use=lambda p: p in busy,
    )  # fmt: skip
    assert decision.path == str(tmp_path / "f.2.bin") and decision.action == "renamed"
    with pytest.raises(FileExistsError_):
        decide_output(
            str(tmp_path), "f.bin", exists=lambda p: False, allow_overwrite=False,
            auto_file_renaming=False, continue_=False, control_file_exists=lambda p: False,
            in_use=lambda p: p in busy,
        )  # fmt: skip
