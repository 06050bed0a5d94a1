"""Which proxy a connection goes through, and how (pure).

Theory of operation
-------------------
aria2 keeps one proxy per protocol (``--http-proxy``, ``--https-proxy``, ``--ftp-proxy``)
and falls back to ``--all-proxy`` when the protocol's own option is empty
(``AbstractCommand.cc`` ``getProxyOptionFor``); ``sftp`` uses the FTP proxy.  The
``*-proxy-user``/``*-proxy-passwd`` options replace the credentials of *their* proxy URI
(``makeProxyUri``).  ``--no-proxy`` lists host names, ``.domain`` suffixes (a leading dot;
never matched against an IP literal) and ``ADDRESS/BITS`` networks (``inNoProxy``,
``util::noProxyDomainMatch``, ``util::inSameCidrBlock``); as in aria2 the CIDR test compares
the URI's host as written, it does not resolve names.

The environment variables ``http_proxy``, ``https_proxy``, ``ftp_proxy``, ``all_proxy`` and
``no_proxy`` (:func:`proxy_variables`) sit between the configuration file and the command
line: aria2 reads them over the conf file and then lets the command line win
(``option_processing.cc`` ``overrideWithEnv``).  aria2 reads lower case only; trioaria also
reads the upper-case spellings, the lower case one winning when both are set.

How a connection uses the proxy (:meth:`ProxySettings.route`): ``https``, ``sftp``,
``ftps``/``ftpes`` and every SOCKS proxy always *tunnel* (HTTP ``CONNECT``, RFC 9110 §9.3.6,
or the SOCKS handshake); plain ``http`` and ``ftp`` are forwarded with an absolute-form
``GET`` (RFC 9112 §3.2.2) unless ``--proxy-method=tunnel`` (aria2 ``resolveProxyMethod``).
Beyond aria2: an ``https://`` proxy URI means TLS *to* the proxy (aria2 #1127); ``socks5://``
(RFC 1928, user/password per RFC 1929) resolves names locally, ``socks5h://`` lets the proxy
resolve them, ``socks4a://`` sends the name to the proxy and ``socks4://`` an IPv4 address.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from ..base.errors import OptionError

__all__ = [
    "DEFAULT_PORTS",
    "PROXY_VARIABLES",
    "SOCKS_SCHEMES",
    "Proxy",
    "ProxyRoute",
    "ProxySettings",
    "no_proxy_match",
    "parse_proxy",
    "proxy_variables",
]

#: Default port per proxy scheme (an ``http://`` proxy without a port is on 80, as in aria2).
DEFAULT_PORTS: dict[str, int] = {
    "http": 80,
    "https": 443,
    "socks4": 1080,
    "socks4a": 1080,
    "socks5": 1080,
    "socks5h": 1080,
}
SOCKS_SCHEMES = frozenset({"socks4", "socks4a", "socks5", "socks5h"})

#: Environment variable -> option it sets (aria2 ``option_processing.cc``).
PROXY_VARIABLES: dict[str, str] = {
    "http_proxy": "http-proxy",
    "https_proxy": "https-proxy",
    "ftp_proxy": "ftp-proxy",
    "all_proxy": "all-proxy",
    "no_proxy": "no-proxy",
}

# URI scheme -> the protocol whose proxy option applies (aria2 getProxyUri: sftp uses ftp's).
_PROTOCOL = {
    "http": "http",
    "https": "https",
    "ftp": "ftp",
    "ftps": "ftp",
    "ftpes": "ftp",
    "sftp": "ftp",
}
# Schemes whose connection must be a tunnel whatever --proxy-method says: TLS to the origin
# and SSH cannot be forwarded by a GET.
_ALWAYS_TUNNEL = frozenset({"https", "sftp", "ftps", "ftpes"})


@dataclass(frozen=True, slots=True)
class Proxy:
    """One proxy server.

    Attributes:
        scheme: ``http``, ``https`` (TLS to the proxy), ``socks4``, ``socks4a``, ``socks5``
            or ``socks5h``.
        host: name or IP literal, without brackets.
        port: TCP port.
        user, password: credentials (``Proxy-Authorization: Basic``, RFC 7617, or SOCKS5
            user/password, RFC 1929); ``None`` when not given.
    """

    scheme: str
    host: str
    port: int
    user: str | None = None
    password: str | None = None

    @property
    def is_socks(self) -> bool:
        """A SOCKS proxy (always a tunnel)."""
        return self.scheme in SOCKS_SCHEMES

    @property
    def tls(self) -> bool:
        """The connection *to* the proxy is TLS (an ``https://`` proxy URI)."""
        return self.scheme == "https"

    @property
    def label(self) -> str:
        """``scheme://host:port`` for messages; never the password."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value (RFC 9110 §11.7.2, Basic per RFC 7617), if any."""
        if self.user is None:
            return None
        token = f"{self.user}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(token).decode("ascii")


@dataclass(frozen=True, slots=True)
class ProxyRoute:
    """How one connection reaches its origin.

    Attributes:
        proxy: the proxy to connect to.
        tunnel: ``True``: a byte tunnel to the origin (``CONNECT`` or SOCKS), over which the
            origin's own protocol (and TLS) runs; ``False``: HTTP forwarding, the request goes
            to the proxy in absolute form.
    """

    proxy: Proxy
    tunnel: bool


def parse_proxy(uri: str, *, user: str | None = None, password: str | None = None) -> Proxy:
    """Parse a proxy URI ``[scheme://][USER:PASS@]HOST[:PORT][/]``.

    A missing scheme means ``http``; ``ftp://`` is an HTTP proxy (aria2).  *user* and
    *password* (the ``*-proxy-user``/``*-proxy-passwd`` options) replace the URI's own.

    Raises:
        OptionError: not a proxy URI we can use (exit 28).
    """
    text = uri.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError:
        raise OptionError(f"unrecognized proxy {redact_userinfo(uri)!r}") from None
    scheme = parts.scheme.lower()
    if scheme == "ftp":
        scheme = "http"
    if scheme not in DEFAULT_PORTS or not parts.hostname or port == 0:
        raise OptionError(f"unrecognized proxy {redact_userinfo(uri)!r}")
    uri_user = urllib.parse.unquote(parts.username) if parts.username is not None else None
    uri_pass = urllib.parse.unquote(parts.password) if parts.password is not None else None
    return Proxy(
        scheme=scheme,
        host=parts.hostname,
        port=port if port is not None else DEFAULT_PORTS[scheme],
        user=user if user is not None else uri_user,
        password=password if password is not None else uri_pass,
    )


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def no_proxy_match(host: str, entries: tuple[str, ...] | list[str]) -> bool:
    """Whether *host* is reached directly according to ``--no-proxy`` *entries*.

    As aria2's ``inNoProxy``: an entry without ``/`` matches the host name exactly, or, when
    it starts with a dot, as a suffix (``.example.org`` matches ``a.example.org`` but not
    ``example.org``) unless the host is an IP literal; ``ADDRESS/BITS`` matches an IP literal
    in that network (bits above the address size mean the whole address).  Comparisons of
    names ignore case (DNS names are case-insensitive, RFC 4343).  Beyond aria2, ``*``
    matches every host, as ``no_proxy=*`` does for curl, wget and Python.
    """
    name = host.strip("[]").lower().rstrip(".")
    address = _ip(name)
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":  # curl, wget and Python's urllib: every host (aria2 has no "*")
            return True
        if "/" not in entry:
            if entry.startswith(".") and address is None:
                if name.endswith(entry):
                    return True
            elif name == entry.strip("[]").rstrip("."):
                return True
            continue
        net_text, _, bits_text = entry.partition("/")
        net = _ip(net_text)
        if address is None or net is None or not bits_text.isdigit():
            continue
        if net.version != address.version:
            continue
        bits = min(int(bits_text), net.max_prefixlen)
        network = ipaddress.ip_network(f"{net}/{bits}", strict=False)
        if address in network:
            return True
    return False


def _split_no_proxy(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """The proxy configuration of one download (a value; build it once per source).

    Attributes:
        http, https, ftp: the proxy per protocol after the ``--all-proxy`` fallback.
        no_proxy: ``--no-proxy`` entries.
        method: ``--proxy-method``: ``get`` or ``tunnel``.
    """

    http: Proxy | None = None
    https: Proxy | None = None
    ftp: Proxy | None = None
    no_proxy: tuple[str, ...] = ()
    method: Literal["get", "tunnel"] = "get"

    @classmethod
    def from_options(cls, get: Callable[[str], object]) -> ProxySettings:
        """The settings of an options object; *get* is its ``.get`` (``name -> value``).

        Raises:
            OptionError: a proxy option holds an unusable URI.
        """

        def text(name: str) -> str:
            value = get(name)
            return "" if value is None else str(value)

        def one(protocol: str) -> Proxy | None:
            for prefix in (protocol, "all"):
                uri = text(f"{prefix}-proxy").strip()
                if uri:
                    user = get(f"{prefix}-proxy-user")
                    password = get(f"{prefix}-proxy-passwd")
                    return parse_proxy(
                        uri,
                        user=None if user is None else str(user),
                        password=None if password is None else str(password),
                    )
            return None

        method = text("proxy-method") or "get"
        return cls(
            http=one("http"),
            https=one("https"),
            ftp=one("ftp"),
            no_proxy=_split_no_proxy(text("no-proxy")),
            method="tunnel" if method == "tunnel" else "get",
        )

    @property
    def any(self) -> bool:
        """Some protocol has a proxy."""
        return bool(self.http or self.https or self.ftp)

    def proxy_for(self, scheme: str, host: str) -> Proxy | None:
        """The proxy for a URI of *scheme* on *host*, or ``None`` to connect directly."""
        protocol = _PROTOCOL.get(scheme.lower())
        if protocol is None:
            return None
        proxy: Proxy | None = getattr(self, protocol)
        if proxy is None or no_proxy_match(host, self.no_proxy):
            return None
        return proxy

    def route(self, scheme: str, host: str) -> ProxyRoute | None:
        """How to reach *host* for a URI of *scheme*: ``None`` (directly) or a
        :class:`ProxyRoute` (see the module's theory of operation)."""
        proxy = self.proxy_for(scheme, host)
        if proxy is None:
            return None
        tunnel = proxy.is_socks or self.method == "tunnel" or scheme.lower() in _ALWAYS_TUNNEL
        return ProxyRoute(proxy, tunnel)


def redact_userinfo(uri: str) -> str:
    """*uri* fit for a message: a password in its userinfo shown as ``***``."""
    return _USERINFO.sub(lambda m: m.group(1) + (":***" if m.group(2) else "") + "@", uri)


# userinfo ends at the authority's last "@" (as urllib splits it): a password may hold "@"
_USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*://)?[^:@/]*)(:[^/]*)?@(?=[^@/]*(?:/|$))")


def proxy_variables(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """The proxy options the environment sets: ``{option: (variable, value)}``.

    The lower-case variable wins over the upper-case one (aria2 reads only lower case);
    variables set to an empty string are ignored.  Under CGI (``REQUEST_METHOD`` set) the
    upper-case ``HTTP_PROXY`` is not read: it is the client's ``Proxy:`` request header there
    ("httpoxy", CVE-2016-5385; Python's urllib and curl do the same).
    """
    out: dict[str, tuple[str, str]] = {}
    cgi = "REQUEST_METHOD" in env
    for lower, option in PROXY_VARIABLES.items():
        for name in (lower, lower.upper()):
            if cgi and name == "HTTP_PROXY":
                continue
            value = env.get(name)
            if value is not None and value.strip():
                out[option] = (name, value.strip())
                break
    return out
