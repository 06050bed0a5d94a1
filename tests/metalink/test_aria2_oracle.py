"""aria2c as the oracle: it refuses (exit 20) exactly the documents the parser refuses.

``aria2c --dry-run -M doc`` parses the document and then tries its urls, which point at a closed
port: exit 1 (network) means the document was accepted, exit 20 means it was refused.  One
documented difference is left out: aria2 silently drops a hash that is not valid hex, the parser
refuses the document (trioaria/metalink/parse.py).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from trioaria.base.errors import MetalinkError
from trioaria.metalink.parse import parse_metalink

ARIA2C = shutil.which("aria2c")
# aria2c is a required prerequisite (.ci/run installs it): a missing one fails, never skips
assert ARIA2C, "aria2c is a required prerequisite (apt-get install aria2)"

URL = "http://127.0.0.1:1/"


def _v4(file: str) -> str:
    return f'<?xml version="1.0"?>\n<metalink xmlns="urn:ietf:params:xml:ns:metalink">{file}</metalink>'


SHA1 = "ab" * 20
DOCUMENTS = {
    "good-v4": _v4(f'<file name="a.bin"><size>10</size><url priority="1">{URL}a.bin</url></file>'),
    "good-v4-pieces": _v4(
        f'<file name="a.bin"><size>10</size><hash type="sha-1">{SHA1}</hash>'
        f'<pieces length="8" type="sha-1"><hash>{SHA1}</hash><hash>{SHA1}</hash></pieces>'
        f"<url>{URL}a.bin</url></file>"
    ),
    "good-v4-subdir": _v4(f'<file name="d/a.bin"><url>{URL}a.bin</url></file>'),
    "good-v3": (
        '<metalink version="3.0" xmlns="http://www.metalinker.org/"><files><file name="b.bin">'
        f'<resources><url type="http" preference="100">{URL}b.bin</url></resources>'
        "</file></files></metalink>"
    ),
    "garbage": "garbage",
    "unclosed": _v4('<file name="a">'),
    "xxe": (
        '<?xml version="1.0"?>\n<!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        f'<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="a"><url>{URL}&xxe;</url>'
        "</file></metalink>"
    ),
    "traversal": _v4(f'<file name="../a.bin"><url>{URL}a.bin</url></file>'),
    "absolute": _v4(f'<file name="/tmp/a.bin"><url>{URL}a.bin</url></file>'),
    "huge-size": _v4(f'<file name="a"><size>99999999999999999999</size><url>{URL}a</url></file>'),
    "priority-0": _v4(f'<file name="a"><url priority="0">{URL}a</url></file>'),
    "no-name": _v4(f"<file><url>{URL}a</url></file>"),
}


def _aria2c_exit(doc: Path, tmp: Path) -> int:
    assert ARIA2C is not None
    result = subprocess.run(
        [
            ARIA2C,
            "--dry-run",
            "--max-tries=1",
            "--connect-timeout=2",
            "-q",
            "-d",
            str(tmp),
            "-M",
            str(doc),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return result.returncode


@pytest.mark.parametrize("key", sorted(DOCUMENTS))
def test_refused_exactly_when_aria2c_refuses(key: str, tmp_path: Path) -> None:
    data = DOCUMENTS[key].encode()
    doc = tmp_path / f"{key}.meta4"
    doc.write_bytes(data)
    aria2_refuses = _aria2c_exit(doc, tmp_path / "out") == 20
    try:
        parse_metalink(data)
        we_refuse = False
    except MetalinkError:
        we_refuse = True
    assert we_refuse == aria2_refuses
    assert we_refuse == (not key.startswith("good"))
