"""The pure RPC cores: JSON-RPC and XML-RPC codecs, pagination, GIDs, dispatch rules.

Property tests: arbitrary bytes given to either decoder give an error answer (or a request),
never an exception; Python's own XML-RPC encoder and decoder agree with ours; hostile XML
(billion laughs, external entities, deep nesting, oversize) is refused before it costs anything.
"""

from __future__ import annotations

import base64
import json
import xmlrpc.client
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.base.stats import DownloadStats, DownloadStatus, EngineStats, SourceStats
from trioaria.rpc import jsonrpc, methods, options, status
from trioaria.rpc import xmlrpc as xml_codec
from trioaria.rpc.messages import RpcMethodError, RpcRequest, RpcResponse
from trioaria.rpc.session import session_text
from trioaria.rpc.status import DownloadView

# --- JSON-RPC -----------------------------------------------------------------------------


def test_single_request() -> None:
    call = jsonrpc.decode(b'{"jsonrpc":"2.0","id":"q","method":"aria2.getVersion","params":["t"]}')
    assert not call.batch
    (item,) = call.items
    assert isinstance(item, RpcRequest)
    assert (item.method, item.params, item.id) == ("aria2.getVersion", ["t"], "q")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{bad json", -32700),
        (b"", -32700),
        (b"\xff\xfe", -32700),
        (b"NaN", -32700),
        (b"3", -32600),
        (b'"x"', -32600),
        (b'{"method":"m"}', -32600),  # no id
        (b'{"id":1}', -32600),  # no method
        (b'{"id":1,"method":5}', -32600),
        (b'{"id":1,"method":"m","params":{"a":1}}', -32602),  # named params: aria2 has none
        (b'{"id":1,"method":"m","params":null}', -32602),
    ],
)
def test_request_errors(body: bytes, code: int) -> None:
    (item,) = jsonrpc.decode(body).items
    assert isinstance(item, RpcResponse)
    assert item.code == code


def test_error_http_status_and_text() -> None:
    (item,) = jsonrpc.decode(b"{bad").items
    assert isinstance(item, RpcResponse)
    assert jsonrpc.http_status(item) == 500
    assert json.loads(jsonrpc.encode(item)) == {
        "id": None,
        "jsonrpc": "2.0",
        "error": {"code": -32700, "message": "Parse error."},
    }


def test_batch_skips_non_objects() -> None:
    call = jsonrpc.decode(b'[{"id":1,"method":"a"}, 3, "x", {"id":2,"method":"b"}]')
    assert call.batch
    assert [i.method for i in call.items if isinstance(i, RpcRequest)] == ["a", "b"]


def test_get_parameters_as_in_aria2_manual() -> None:
    # aria2c.rst, "JSON-RPC using HTTP GET"
    call = jsonrpc.decode_get(
        "method=aria2.tellStatus&id=foo&params=WyIyMDg5YjA1ZWNjYTNkODI5Il0%3D&jsoncallback=cb"
    )
    (item,) = call.items
    assert isinstance(item, RpcRequest)
    assert (item.method, item.id, item.params) == ("aria2.tellStatus", "foo", ["2089b05ecca3d829"])
    assert call.callback == "cb"
    body = jsonrpc.encode(RpcResponse(0, "OK", "foo"), call.callback)
    assert body == b'cb({"id":"foo","jsonrpc":"2.0","result":"OK"})'


def test_get_batch_in_params() -> None:
    batch = [{"jsonrpc": "2.0", "id": "qwer", "method": "aria2.getVersion"}]
    query = "params=" + base64.b64encode(json.dumps(batch).encode()).decode()
    call = jsonrpc.decode_get(query)
    assert call.batch and isinstance(call.items[0], RpcRequest)


def test_jsonp_callback_must_be_an_identifier() -> None:
    (item,) = jsonrpc.decode_get("method=m&id=1&jsoncallback=alert(1)//").items
    assert isinstance(item, RpcResponse) and item.code == -32600


@given(st.binary(max_size=400))
def test_any_body_gives_requests_or_error_objects(data: bytes) -> None:
    call = jsonrpc.decode(data)
    for item in call.items:
        assert isinstance(item, RpcRequest | RpcResponse)
        if isinstance(item, RpcResponse):
            assert item.code in (-32700, -32600, -32602)
            json.loads(jsonrpc.encode(item))


@given(st.text(max_size=200))
def test_any_query_gives_requests_or_error_objects(query: str) -> None:
    for item in jsonrpc.decode_get(query).items:
        assert isinstance(item, RpcRequest | RpcResponse)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
        max_leaves=20,
    )
)
def test_encoded_responses_are_json(value: Any) -> None:
    assert json.loads(jsonrpc.encode(RpcResponse(0, value, 1)))["result"] == json.loads(
        json.dumps(value)
    )


def test_deep_json_is_a_parse_error_not_a_crash() -> None:
    (item,) = jsonrpc.decode(b"[" * 100_000 + b"]" * 100_000).items
    assert isinstance(item, RpcResponse) and item.code == -32700


# --- XML-RPC ------------------------------------------------------------------------------


def test_python_client_requests_decode() -> None:
    params = (
        "token:x",
        ["http://a/f"],
        {"split": "2", "header": ["A: b", "C: d"]},
        3,
        True,
        b"\x00\x01",
    )
    data = xmlrpc.client.dumps(params, "aria2.addUri").encode()
    request = xml_codec.decode(data)
    assert request.method == "aria2.addUri" and not request.json
    assert request.params == list(params)


@given(
    st.recursive(
        st.booleans()
        | st.integers(-(2**31), 2**31 - 1)
        | st.text(
            alphabet=st.characters(
                blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"
            )
        ),
        lambda c: (
            st.lists(c, max_size=4)
            | st.dictionaries(st.text(alphabet="abcxyz-", max_size=5), c, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_xmlrpc_round_trip_with_python_client(value: Any) -> None:
    request = xml_codec.decode(xmlrpc.client.dumps((value,), "m").encode())
    assert request.params == [value]
    (loaded,), _ = xmlrpc.client.loads(xml_codec.encode_response(value))
    assert loaded == value


def test_fault_is_readable_by_python_client() -> None:
    with pytest.raises(xmlrpc.client.Fault) as info:
        xmlrpc.client.loads(xml_codec.encode_fault(1, "GID 0123 is not found <&>"))
    assert info.value.faultCode == 1 and info.value.faultString == "GID 0123 is not found <&>"


def test_control_characters_never_break_the_document() -> None:
    (loaded,), _ = xmlrpc.client.loads(xml_codec.encode_response({"m": "a\x00b\x1bc\udc80"}))
    assert loaded == {"m": "a\ufffdb\ufffdc\ufffd"}


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<methodCall><methodName>&lol3;</methodName></methodCall>"""

EXTERNAL = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<methodCall><methodName>m</methodName><params><param><value>&e;</value></param></params></methodCall>"""


@pytest.mark.parametrize(
    "data",
    [
        BILLION_LAUGHS,
        EXTERNAL,
        b"<?xml version='1.0'?><!DOCTYPE methodCall><methodCall><methodName>m</methodName></methodCall>",
        b"<methodCall><methodName>m</methodName>",
        b"<notACall/>",
        b"<methodCall><params/></methodCall>",
        b"<methodCall><methodName>m</methodName><params><param><value><int>x</int></value></param></params></methodCall>",
        b"<methodCall><methodName>m</methodName><params><param><value><foo/></value></param></params></methodCall>",
        b"<methodCall><methodName>m</methodName><params><param>"
        + b"<value><array><data>" * 60
        + b"</data></array></value>" * 60
        + b"</param></params></methodCall>",
    ],
)
def test_hostile_or_malformed_xml_is_refused(data: bytes) -> None:
    with pytest.raises(xml_codec.XmlRpcParseError):
        xml_codec.decode(data)


def test_size_limit() -> None:
    data = xmlrpc.client.dumps(("x" * 5000,), "m").encode()
    with pytest.raises(xml_codec.XmlRpcParseError):
        xml_codec.decode(data, max_size=1000)
    assert xml_codec.decode(data).params == ["x" * 5000]


@given(st.binary(max_size=400))
def test_any_bytes_parse_or_are_refused(data: bytes) -> None:
    try:
        request = xml_codec.decode(data)
    except xml_codec.XmlRpcParseError:
        return
    assert isinstance(request.method, str)


@given(st.text(max_size=300))
def test_any_text_inside_a_call_parses_or_is_refused(text: str) -> None:
    data = f"<methodCall><methodName>m</methodName><params><param><value>{text}</value></param></params></methodCall>"
    try:
        xml_codec.decode(data.encode("utf-8", "surrogatepass"))
    except xml_codec.XmlRpcParseError:
        pass


# --- pagination, GIDs, status structs ------------------------------------------------------


def test_pagination_as_in_aria2_manual() -> None:
    items = ["A", "B", "C"]
    assert status.paginate(items, 0, 1) == ["A"]
    assert status.paginate(items, 1, 2) == ["B", "C"]
    assert status.paginate(items, -1, 2) == ["C", "B"]
    assert status.paginate(items, -1, 10) == ["C", "B", "A"]
    assert status.paginate(items, -4, 2) == []
    assert status.paginate(items, 3, 2) == []
    assert status.paginate(items, 0, 0) == []


@given(st.integers(0, 12), st.integers(-15, 15), st.integers(-2, 15))
def test_pagination_matches_aria2_algorithm(size: int, offset: int, num: int) -> None:
    items = list(range(size))
    got = status.paginate(items, offset, num)
    # aria2's AbstractPaginationRpcMethod::getPaginationRange, restated
    if num <= 0:
        want: list[int] = []
    elif offset < 0:
        temp = offset + size
        if temp < 0:
            want = []
        else:
            start, n = temp - (num - 1), num
            if start < 0:
                start, n = 0, temp + 1
            want = list(reversed(items[start : min(size, start + n)]))
    else:
        want = [] if offset >= size else items[offset : min(size, offset + num)]
    assert got == want


def test_expand_gid() -> None:
    known = ["2089b05ecca3d829", "2089c05ecca3d829", "ffffffffffffffff"]
    assert methods.expand_gid("ff", known) == "ffffffffffffffff"
    assert methods.expand_gid("2089B", known) == "2089b05ecca3d829"
    for text, message in [
        ("2089", "GID 2089 is not unique"),
        ("0123456789abcdef", "GID 0123456789abcdef is not found"),
        ("xyz", "Invalid GID xyz"),
        ("", "Invalid GID "),
        ("0" * 17, f"Invalid GID {'0' * 17}"),
    ]:
        with pytest.raises(RpcMethodError, match=f"^{message}$"):
            methods.expand_gid(text, known)


def _stats(state: DownloadStatus, **kw: Any) -> DownloadStats:
    base: dict[str, Any] = {
        "gid": "2089b05ecca3d829",
        "status": state,
        "total_length": 3 << 20,
        "completed_length": 1 << 20,
        "download_speed": 100,
    }
    base.update(kw)
    return DownloadStats(**base)


def test_status_struct_strings_and_keys() -> None:
    view = DownloadView(
        _stats(
            DownloadStatus.ACTIVE,
            bitfield=b"\x80",
            piece_length=1 << 20,
            num_pieces=3,
            connections=2,
            sources=(SourceStats("http://a/f", 10, 5, 1),),
        ),
        "/d",
        ("http://a/f",),
        "f",
    )
    full = status.status_struct(view)
    assert full["bitfield"] == "80" and full["numPieces"] == "3" and full["connections"] == "2"
    assert "errorCode" not in full
    assert all(isinstance(v, str) for k, v in full.items() if k != "files")
    assert full["files"] == [
        {
            "index": "1",
            "path": "/d/f",
            "length": str(3 << 20),
            "completedLength": str(1 << 20),
            "selected": "true",
            "uris": [{"uri": "http://a/f", "status": "used"}],
        }
    ]
    assert status.status_struct(view, ["gid", "status"]) == {
        "gid": "2089b05ecca3d829",
        "status": "active",
    }
    removed = status.status_struct(DownloadView(_stats(DownloadStatus.REMOVED), "/d"))
    assert (removed["errorCode"], removed["downloadSpeed"], "bitfield" in removed) == (
        "31",
        "0",
        False,
    )


def test_global_stat() -> None:
    got = status.global_stat(EngineStats(5, 0, 1, 2, 3), num_stopped_total=4)
    assert got == {
        "downloadSpeed": "5",
        "uploadSpeed": "0",
        "numActive": "1",
        "numWaiting": "2",
        "numStopped": "3",
        "numStoppedTotal": "4",
    }


# --- options and sessions -----------------------------------------------------------------


def test_option_filters() -> None:
    struct = {
        "split": "2",
        "max-concurrent-downloads": "3",
        "header": ["A: b"],
        "nonsense": "1",
        "dir": 5,
    }
    assert options.request_options(struct) == {"split": "2", "header": ["A: b"]}
    change = options.split_change(
        {"max-download-limit": "1K", "split": "3", "dry-run": "true"}, active=True
    )
    assert (change.live, change.restart) == ({"max-download-limit": "1K"}, {"split": "3"})
    assert options.global_change({"max-concurrent-downloads": "3", "out": "x", "split": "2"}) == {
        "max-concurrent-downloads": "3",
        "split": "2",
    }
    assert "rpc-secret" not in options.global_option_strings({"rpc-secret": "s", "dir": "/"})


def test_session_text() -> None:
    text = session_text(
        [
            (
                ["http://a/f", "http://b/f"],
                "1" * 16,
                DownloadStatus.PAUSED,
                {"split": "2", "dir": "/d"},
                ["split"],
                False,
            ),
            (["http://c/g"], "2" * 16, DownloadStatus.COMPLETE, {}, [], False),
            (["http://e/g"], "3" * 16, DownloadStatus.REMOVED, {}, [], False),
        ]
    )
    assert text == f"http://a/f\thttp://b/f\n gid={'1' * 16}\n pause=true\n split=2\n"


def test_session_text_force_save_and_not_found() -> None:
    forced = {"force-save": "true"}
    text = session_text(
        [
            (["http://c/g"], "2" * 16, DownloadStatus.COMPLETE, forced, ["force-save"], False),
            (["http://e/g"], "3" * 16, DownloadStatus.REMOVED, forced, ["force-save"], False),
            (["http://n/1"], "4" * 16, DownloadStatus.ERROR, {}, [], True),
            (["http://n/2"], "5" * 16, DownloadStatus.ERROR, {"save-not-found": "false"}, [], True),
            (
                ["http://n/3"],
                "6" * 16,
                DownloadStatus.ERROR,
                {"save-not-found": "false"},
                [],
                False,
            ),
        ]
    )
    uris = [line for line in text.splitlines() if not line.startswith(" ")]
    assert uris == ["http://c/g", "http://e/g", "http://n/1", "http://n/3"]
    assert f" gid={'5' * 16}" not in text
    assert text.count(" force-save=true") == 2


# --- dispatch rules with a stub backend ------------------------------------------------------


class Stub:
    """A backend with one waiting download and a secret."""

    version = "0.0"
    session_id = "ab"

    def __init__(self) -> None:
        self.view_ = DownloadView(_stats(DownloadStatus.WAITING), "/d", ("http://a/f",))

    def check_token(self, token: str | None) -> bool:
        return token == "s"

    def features(self) -> list[str]:
        return []

    def gids(self) -> list[str]:
        return ["2089b05ecca3d829"]

    def view(self, gid: str) -> DownloadView | None:
        return self.view_

    def waiting(self) -> list[DownloadView]:
        return [self.view_]

    def __getattr__(self, name: str) -> Any:
        raise RpcMethodError(f"stub has no {name}")


def run(method: str, *params: Any, json_rpc: bool = True) -> RpcResponse:
    return methods.dispatch(Stub(), RpcRequest(method, list(params), 1, json_rpc))  # type: ignore[arg-type]


def test_token_rules() -> None:
    assert run("aria2.getVersion", "token:s").value == {"version": "0.0", "enabledFeatures": []}
    bad = run("aria2.getVersion", "token:x")
    assert (bad.code, bad.value, bad.authorized) == (
        1,
        {"code": 1, "message": "Unauthorized"},
        False,
    )
    assert run("aria2.getVersion").value["message"] == "Unauthorized"
    assert run("system.listMethods").value[0] == "aria2.addUri"  # no token needed
    assert "aria2.onDownloadStart" in run("system.listNotifications").value
    xml = run("aria2.getVersion", "token:x", json_rpc=False)
    assert xml.value == {"faultCode": 1, "faultString": "Unauthorized"}


def test_parameter_and_method_errors() -> None:
    assert run("aria2.nope", "token:s").value["message"] == "No such method: aria2.nope"
    assert (
        run("aria2.tellStatus", "token:s").value["message"]
        == "The parameter at 0 is required but missing."
    )
    assert (
        run("aria2.tellStatus", "token:s", 5).value["message"]
        == "The parameter at 0 has wrong type."
    )
    assert (
        run("aria2.tellWaiting", "token:s", 0, True).value["message"]
        == "The parameter at 1 has wrong type."
    )
    assert run("aria2.addUri", "token:s", []).value["message"] == "URI is not provided."
    assert (
        run("aria2.addUri", "token:s", ["http://a"], {}, -1).value["message"]
        == "Position must be greater than or equal to 0."
    )
    assert (
        run("aria2.changePosition", "token:s", "2089", 0, "POS_X").value["message"]
        == "Illegal argument."
    )
    assert run("aria2.tellStatus", "token:s", "2089", ["gid"]).value == {"gid": "2089b05ecca3d829"}
    assert run("aria2.tellWaiting", "token:s", -1, 1, ["status"]).value == [{"status": "waiting"}]


def test_multicall() -> None:
    calls = [
        {"methodName": "aria2.getVersion", "params": ["token:s"]},
        {"methodName": "aria2.getVersion", "params": ["token:bad"]},
        {"methodName": "system.multicall", "params": []},
        {"params": []},
        "x",
    ]
    response = run("system.multicall", calls)
    assert response.code == 0 and not response.authorized
    assert response.value == [
        [{"version": "0.0", "enabledFeatures": []}],
        {"code": 1, "message": "Unauthorized"},
        {"code": 1, "message": "Recursive system.multicall forbidden."},
        {"code": 1, "message": "Missing methodName."},
        {"code": 1, "message": "system.multicall expected struct."},
    ]
