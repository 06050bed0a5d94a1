"""Which files and mirrors a Metalink download uses, end to end against nginx (issue 13, part 2).

* ``--metalink-language/-os/-version`` pick files, ``--metalink-location`` and
  ``--metalink-preferred-protocol`` pick the mirror asked first (nginx's log shows it);
* ``--metalink-enable-unique-protocol``: one host's other urls are dropped once one answered;
* the signature is saved as ``<file>.sig``, never over an existing one;
* Metalink 3 ``maxconnections="1"``: one connection, no segments.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.cli_util import log_lines, run_cli, unique_name
from tests.servers.nginx import NginxServer

NS = "urn:ietf:params:xml:ns:metalink"


def _doc(tmp_path: Path, files: str, name: str = "c.meta4") -> Path:
    path = tmp_path / name
    path.write_text(f'<metalink xmlns="{NS}">{files}</metalink>')
    return path


async def test_language_filter_and_signature(nginx: NginxServer, tmp_path: Path) -> None:
    en, de = unique_name("mlen"), unique_name("mlde")
    nginx.add_file(en, b"english" * 100)
    nginx.add_file(de, b"deutsch" * 100)
    doc = _doc(
        tmp_path,
        f'<file name="en.bin"><language>en</language><url>{nginx.url("/" + en)}</url>'
        '<signature mediatype="application/pgp-signature">-----BEGIN PGP SIGNATURE-----\n'
        "abc\n-----END PGP SIGNATURE-----</signature></file>"
        f'<file name="de.bin"><language>de</language><url>{nginx.url("/" + de)}</url></file>',
    )
    out = tmp_path / "out"
    res = await run_cli("-M", doc, "-d", out, "--metalink-language=en", home=tmp_path)
    assert res.returncode == 0, res
    assert (out / "en.bin").read_bytes() == b"english" * 100
    assert not (out / "de.bin").exists() and not log_lines(nginx, "/" + de)
    sig = (out / "en.bin.sig").read_text()
    assert sig.startswith("-----BEGIN PGP SIGNATURE-----\nabc\n"), sig
    # a second run (-c: the file is complete) keeps the existing signature file
    (out / "en.bin.sig").write_text("mine")
    res = await run_cli("-M", doc, "-d", out, "--metalink-language=en", "-c", home=tmp_path)
    assert res.returncode == 0, res
    assert (out / "en.bin.sig").read_text() == "mine"
    assert "was not saved because it exists" in res.stdout, res.stdout
    # nothing matches: nothing is downloaded, and aria2's notice says why
    res = await run_cli("-M", doc, "-d", tmp_path / "none", "--metalink-os=plan9", home=tmp_path)
    assert res.returncode == 0, res
    assert not (tmp_path / "none").exists()


async def test_location_then_protocol_pick_the_first_mirror(
    nginx: NginxServer, tmp_path: Path
) -> None:
    data = os.urandom(50_000)
    names = [unique_name(f"mlloc{i}") for i in range(3)]
    for n in names:
        nginx.add_file(n, data)
    us, de, jp = (nginx.url("/" + n) for n in names)
    doc = _doc(
        tmp_path,
        f'<file name="l.bin"><url priority="1" location="us">{us}</url>'
        f'<url priority="2" location="de">{de}</url>'
        f'<url priority="3" location="jp">{jp}</url></file>',
    )
    res = await run_cli(
        "-M", doc, "-d", tmp_path / "a", "-s", "1", "--metalink-location=jp", home=tmp_path
    )
    assert res.returncode == 0, res
    assert (tmp_path / "a" / "l.bin").read_bytes() == data
    assert log_lines(nginx, "/" + names[2]), "the jp mirror was asked"
    assert not log_lines(nginx, "/" + names[0]) and not log_lines(nginx, "/" + names[1])


async def test_unique_protocol_drops_the_hosts_other_protocols(
    nginx: NginxServer, tmp_path: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024)
    a, b, c = unique_name("mlua"), unique_name("mlub"), unique_name("mluc")
    for n in (a, b, c):
        nginx.add_file(n, data)
    # one host offering the file over http and https (as a mirror with http and ftp urls
    # would), plus another http path on it: with unique protocol the https url is dropped
    # once the http one answered; the other http path is not another protocol and stays
    doc = _doc(
        tmp_path,
        f'<file name="u.bin"><url priority="1">{nginx.url("/" + a)}</url>'
        f'<url priority="2">{nginx.https_url("/" + b)}</url>'
        f'<url priority="3">{nginx.url("/" + c)}</url></file>',
    )
    common = (
        "-M", doc, "-s", "6", "-x", "3", "-k", "1M", f"--ca-certificate={nginx.ca_cert}",
    )  # fmt: skip
    res = await run_cli(*common, "-d", tmp_path / "u", home=tmp_path)
    assert res.returncode == 0, res
    assert (tmp_path / "u" / "u.bin").read_bytes() == data
    assert not log_lines(nginx, "/" + b), "the https url of the host was not used"
    assert log_lines(nginx, "/" + a)
    # without it the https url serves connections too
    res = await run_cli(
        *common, "-d", tmp_path / "v", "--metalink-enable-unique-protocol=false", home=tmp_path
    )
    assert res.returncode == 0, res
    assert (tmp_path / "v" / "u.bin").read_bytes() == data
    assert log_lines(nginx, "/" + b)


async def test_v3_maxconnections_one_is_one_connection(nginx: NginxServer, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024)
    name = unique_name("mlmc")
    nginx.add_file(name, data)
    doc = tmp_path / "mc.metalink"
    doc.write_text(
        '<metalink version="3.0" xmlns="http://www.metalinker.org/"><files><file name="mc.bin">'
        f'<resources maxconnections="1"><url type="http">{nginx.url("/" + name)}</url>'
        "</resources></file></files></metalink>"
    )
    res = await run_cli(doc, "-d", tmp_path / "mc", "-s", "4", "-x", "4", "-k", "1M", home=tmp_path)
    assert res.returncode == 0, res
    assert (tmp_path / "mc" / "mc.bin").read_bytes() == data
    assert len(log_lines(nginx, "/" + name)) == 1, "one request: not segmented"
