"""The table of every aria2 option: name, short flag, type, default, range, tags, help.

This module is pure data (no I/O).  It lists all 207 option handlers that aria2
registers in ``src/OptionHandlerFactory.cc`` (the 197 documented in
``doc/manual-src/en/aria2c.rst`` plus ten hidden or deprecated ones), in aria2's
own order (``src/prefs.cc``), so ``--help=#all`` prints them in the same order as
``aria2c --help=#all``.  Names, short flags, defaults, ranges, choices and tags are
aria2's interface and are kept exactly, with the departures recorded in
docs/decisions.md:

* ``--max-connection-per-server`` has no hard cap of 16 (max 65535);
* ``--auto-save-interval`` defaults to 1 second (aria2: 60);
* ``--user-agent``/``--peer-agent``/``--peer-id-prefix`` name trioaria, not aria2;
* ``--ssh-host-key-md`` also accepts ``sha-256``.

The help sentences are our own short wording.  Which options the engine honours
is the single :data:`IMPLEMENTED` set (:mod:`trioaria.cli.implemented`, re-exported here); every other
option is accepted, warned about once and listed by ``--help=#unsupported``, except those in
:data:`REFUSED` (proxies and the like), which are an error until they are implemented.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from trioaria._version import __version__
from trioaria.cli.implemented import IMPLEMENTED

__all__ = [
    "IMPLEMENTED",
    "OPTIONS",
    "REFUSED",
    "SHORT_OPTIONS",
    "TAGS",
    "ArgKind",
    "OptType",
    "OptionSpec",
]


class OptType(enum.Enum):
    """How an option's string value is parsed (aria2's OptionHandler classes)."""

    BOOL = "bool"  # BooleanOptionHandler: "true" / "false"
    INT = "int"  # NumberOptionHandler: integer within [min, max]
    UNIT = "unit"  # UnitNumberOptionHandler: integer with optional K/M suffix (1K = 1024)
    FLOAT = "float"  # FloatNumberOptionHandler
    STRING = "string"  # DefaultOptionHandler: any text
    PATH = "path"  # LocalFilePathOptionHandler: a local path, ${HOME} expanded
    ENUM = "enum"  # ParameterOptionHandler: one of ``choices``
    LIST = "list"  # CumulativeOptionHandler / IndexOutOptionHandler: repeatable
    INT_RANGE = "int_range"  # IntegerRangeOptionHandler: "1-5,8" within [min, max]
    CHECKSUM = "checksum"  # ChecksumOptionHandler: "TYPE=HEXDIGEST"
    HOST_PORT = "host_port"  # HostPortOptionHandler: "HOST:PORT"
    PROXY = "proxy"  # HttpProxyOptionHandler: "[scheme://][USER:PASS@]HOST[:PORT]"
    PIECE_PRIORITY = "piece_priority"  # PrioritizePieceOptionHandler: "head[=SIZE],tail[=SIZE]"
    CONCURRENCY = "concurrency"  # OptimizeConcurrentDownloadsOptionHandler: true|false|A:B


class ArgKind(enum.Enum):
    """Whether the option takes an argument on the command line (getopt ``has_arg``).

    ``OPTIONAL`` options take a value only in the ``--name=value`` form (or the
    attached short form ``-cfalse``); a following separate word is not consumed.
    """

    REQUIRED = "required"
    OPTIONAL = "optional"
    NONE = "none"


#: aria2's help tags in aria2's order (``src/help_tags.cc``); ``#all`` and our
#: ``#unsupported`` are pseudo-tags handled by ``trioaria.cli.help``.
TAGS: tuple[str, ...] = (
    "#basic",
    "#advanced",
    "#http",
    "#https",
    "#ftp",
    "#metalink",
    "#bittorrent",
    "#cookie",
    "#hook",
    "#file",
    "#rpc",
    "#checksum",
    "#experimental",
    "#deprecated",
    "#help",
)


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One aria2 option.

    Attributes:
        name: aria2's long name, e.g. ``"max-connection-per-server"``.
        short: one-letter short flag (``"x"``) or ``None``.
        type: how the value is parsed, see :class:`OptType`.
        default: aria2's default in its string form (``"1"``, ``"20M"``,
            ``"true"``); ``None`` means unset.  Defaults that depend on the
            environment (``dir``, ``conf-path``, ``netrc-path``,
            ``dht-file-path[6]``) come from ``trioaria.cli.options.dynamic_defaults``.
        min: smallest allowed number (INT, UNIT, FLOAT, INT_RANGE) or ``None``.
        max: largest allowed number or ``None``.
        choices: allowed values (ENUM; hash types for CHECKSUM).
        tags: help tags, in aria2's order.
        help: one-paragraph description.
        per_download: usable per download: in ``-i`` files and RPC option
            structs (aria2's "initial" options, the manual's Input File list).
        implemented: the engine honours it; otherwise it warns once (or is refused).
        refused: not implemented, and ignoring it would change where traffic goes (a
            proxy, an interface, a DNS server): setting it is an error, exit 28, until it
            is implemented (see :data:`REFUSED`).
        no_arg_value: the value when given without an argument
            (``-c`` -> ``"true"``, ``--help`` -> ``"#basic"``).
        arg: whether the command line requires, allows or forbids an argument.
        metavar: the argument part shown in help, e.g. ``"=NUM"``.
        possible: text for the ``Possible Values:`` help line where it cannot be
            derived from the type (paths, free text).
        hidden: aria2 hides it from help (still accepted here).
        deprecated: aria2 marks it deprecated.
        secret: a password-like value that must be masked in logs and output.
        change_active: RPC ``changeOption`` may change it on an active download.
        change_waiting: RPC ``changeOption`` may change it on a waiting/paused one.
        change_global: RPC ``changeGlobalOption`` accepts it.
        must_exist: (PATH) the file must exist when the option is used.
        accept_stdin: (PATH) ``-`` means standard input.
    """

    name: str
    short: str | None
    type: OptType
    default: str | None
    min: int | float | None = None
    max: int | float | None = None
    choices: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    help: str = ""
    per_download: bool = False
    implemented: bool = False
    refused: bool = False
    no_arg_value: str | None = None
    arg: ArgKind = ArgKind.REQUIRED
    metavar: str = ""
    possible: str = ""
    hidden: bool = False
    deprecated: bool = False
    secret: bool = False
    change_active: bool = False
    change_waiting: bool = False
    change_global: bool = False
    must_exist: bool = False
    accept_stdin: bool = False

    @property
    def attr(self) -> str:
        """The Python attribute name: ``max-connection-per-server`` -> ``max_connection_per_server``."""
        return self.name.replace("-", "_")


T = OptType
A = ArgKind

# aria2 uses "A2-<major>-<minor>-<patch>-"; we use the Azureus-style "-TA0100-".
_PEER_ID_PREFIX = "-TA" + "".join(__version__.split(".")[:3]).ljust(4, "0")[:4] + "-"


# Options not implemented yet whose silent omission would send traffic somewhere the user did
# not choose (issue 15): setting one is an error (exit 28) naming it, with the reason below.
# Harmless ones (BitTorrent, RPC, hooks, ...) stay warnings.  Remove a name when it lands.
REFUSED: dict[str, str] = {
    "interface": "binding to an interface is not implemented yet, and trioaria would use the"
    " default route",
    "multiple-interface": "binding to interfaces is not implemented yet, and trioaria would use"
    " the default route",
    "async-dns-server": "choosing the DNS server is not implemented yet, and trioaria would ask"
    " the system's resolver",
    "hash-check-only": "it is not implemented yet, and trioaria would download what the check"
    " finds missing",
}


def _row(
    name: str,
    short: str | None,
    type_: OptType,
    default: str | None,
    *,
    lo: int | float | None = None,
    hi: int | float | None = None,
    choices: tuple[str, ...] = (),
    tags: tuple[str, ...] = (),
    metavar: str = "",
    arg: ArgKind = ArgKind.REQUIRED,
    no_arg_value: str | None = None,
    possible: str = "",
    flags: str = "",
    help: str = "",  # noqa: A002 - the field is called help
) -> OptionSpec:
    """Build one row.  ``flags`` letters: D per-download, A/W/G changeable on an
    active download / a waiting download / globally over RPC, H hidden,
    X deprecated, S secret, E must exist, I '-' means stdin."""
    return OptionSpec(
        name=name,
        short=short,
        type=type_,
        default=default,
        min=lo,
        max=hi,
        choices=choices,
        tags=tags,
        help=help,
        per_download="D" in flags,
        implemented=name in IMPLEMENTED,
        refused=name in REFUSED,
        no_arg_value=no_arg_value,
        arg=arg,
        metavar=metavar,
        possible=possible,
        hidden="H" in flags,
        deprecated="X" in flags,
        secret="S" in flags,
        change_active="A" in flags,
        change_waiting="W" in flags,
        change_global="G" in flags,
        must_exist="E" in flags,
        accept_stdin="I" in flags,
    )


# One row per aria2 option, in aria2's order (src/prefs.cc).
# fmt: off
_ROWS: tuple[OptionSpec, ...] = (
    _row('version', 'v', T.BOOL, None, tags=('#basic',), metavar='', arg=A.NONE, no_arg_value='true', help='Print the version and exit.'),
    _row('help', 'h', T.STRING, '#basic', tags=('#basic', '#help'), metavar='[=TAG|KEYWORD]', arg=A.OPTIONAL, no_arg_value='#basic', help="Print help and exit. TAG (starting with '#') lists the options carrying that tag; any other word lists the options whose name contains it. '#all' lists everything; '#unsupported' lists options accepted but not implemented yet."),
    _row('timeout', 't', T.INT, '60', lo=1, hi=600, tags=('#http', '#ftp'), metavar='=SEC', flags='DWG', help='Give up on a connection after SEC seconds without progress.'),
    _row('dns-timeout', None, T.INT, '30', lo=1, hi=60, tags=(), metavar='=SEC', flags='H', help='Seconds to wait for a name lookup (hidden in aria2).'),
    _row('connect-timeout', None, T.INT, '60', lo=1, hi=600, tags=('#http', '#ftp'), metavar='=SEC', flags='DWG', help='Seconds allowed for establishing a connection to an HTTP/FTP/proxy server; afterwards --timeout applies.'),
    _row('max-tries', 'm', T.INT, '5', lo=0, tags=('#http', '#ftp'), metavar='=N', flags='DWG', help='Number of attempts per download; 0 means no limit.'),
    _row('auto-save-interval', None, T.INT, '1', lo=0, hi=600, tags=('#advanced',), metavar='=SEC', help='Save the control file (*.aria2) every SEC seconds while data flows; 0 disables periodic saves. A final save always happens on stop. trioaria defaults to 1 (aria2: 60) and syncs the data first.'),
    _row('log', 'l', T.PATH, None, tags=('#basic',), metavar='=LOG', possible='/path/to/file, -', flags='G', help="Write the log to FILE; '-' means standard output."),
    _row('dir', 'd', T.PATH, '.', tags=('#basic', '#file'), metavar='=DIR', possible='/path/to/directory', flags='DWG', help='Directory where downloaded files are stored.'),
    _row('out', 'o', T.PATH, None, tags=('#basic', '#http', '#ftp', '#file'), metavar='=FILE', possible='/path/to/file', flags='DW', help='Name of the downloaded file, relative to --dir. Ignored with -Z. -o - streams the file to standard output in order (the console readout moves to stderr).'),
    _row('split', 's', T.INT, '5', lo=1, tags=('#basic', '#http', '#ftp'), metavar='=N', flags='DWG', help='Use N connections for one file. With more than N URIs the extra ones are backups; with fewer, URIs are reused until N connections exist (limited per host by --max-connection-per-server; see also --min-split-size).'),
    _row('daemon', 'D', T.BOOL, 'false', tags=('#advanced',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help="Detach and run in the background: chdir to '/' and point stdin/stdout/stderr to /dev/null."),
    _row('referer', None, T.STRING, None, tags=('#http',), metavar='=REFERER', flags='DWG', help="Referer header for HTTP(S) requests. '*' uses the request URI itself (handy with -P)."),
    _row('lowest-speed-limit', None, T.UNIT, '0', lo=0, tags=('#http', '#ftp'), metavar='=SPEED', flags='DWG', help='Drop a connection whose speed is at or below SPEED bytes/s; 0 disables. K and M suffixes are accepted. Not used for BitTorrent.'),
    _row('piece-length', None, T.UNIT, '1M', lo=1048576, hi=1073741824, tags=('#advanced', '#http', '#ftp'), metavar='=LENGTH', flags='DG', help='Piece size for HTTP/FTP downloads: segment boundaries fall on multiples of it. Ignored for BitTorrent and for Metalink files with piece hashes.'),
    _row('max-overall-download-limit', None, T.UNIT, '0', lo=0, tags=('#http', '#ftp', '#bittorrent'), metavar='=SPEED', flags='G', help='Cap on the total download speed in bytes/s; 0 means unlimited. K and M suffixes are accepted.'),
    _row('max-download-limit', None, T.UNIT, '0', lo=0, tags=('#http', '#ftp', '#bittorrent'), metavar='=SPEED', flags='DAWG', help='Cap on the download speed of each download in bytes/s; 0 means unlimited. K and M suffixes are accepted.'),
    _row('startup-idle-time', None, T.INT, '10', lo=1, hi=60, tags=(), metavar='=SEC', flags='H', help='Seconds a connection runs before --lowest-speed-limit is checked (hidden in aria2).'),
    _row('file-allocation', 'a', T.ENUM, 'prealloc', choices=('none', 'prealloc', 'trunc', 'falloc'), tags=('#basic', '#file'), metavar='=METHOD', flags='DWG', help="How to reserve disk space: 'none' does nothing, 'prealloc' writes zeros up front, 'trunc' sets the length with ftruncate, 'falloc' uses posix_fallocate (fast on ext4, btrfs, xfs)."),
    _row('no-file-allocation-limit', None, T.UNIT, '5M', lo=0, tags=('#advanced', '#file'), metavar='=SIZE', flags='DWG', help='Skip file allocation for files smaller than SIZE. K and M suffixes are accepted.'),
    _row('allow-overwrite', None, T.BOOL, 'false', tags=('#advanced', '#file'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Start from scratch when the control file is missing. See also --auto-file-renaming.'),
    _row('realtime-chunk-checksum', None, T.BOOL, 'true', tags=('#metalink', '#checksum'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Verify chunk checksums while downloading when they are available.'),
    _row('check-integrity', 'V', T.BOOL, 'false', tags=('#basic', '#metalink', '#bittorrent', '#file', '#checksum'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Verify the file with piece hashes or a whole-file hash (BitTorrent, Metalink, or --checksum). Damaged pieces are downloaded again.'),
    _row('netrc-path', None, T.PATH, None, tags=(), metavar='=FILE', possible='/path/to/file', help='Path of the netrc file.'),
    _row('continue', 'c', T.BOOL, 'false', tags=('#basic', '#http', '#ftp'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Resume a partially downloaded file written sequentially by another program (HTTP(S)/FTP only).'),
    _row('no-netrc', 'n', T.BOOL, 'false', tags=('#http', '#ftp'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Do not read the netrc file.'),
    _row('input-file', 'i', T.PATH, None, tags=('#basic',), metavar='=FILE', possible='/path/to/file, -', flags='I', help="Read URIs from FILE ('-' for stdin). TAB separates mirror URIs of one download; indented 'name=value' lines after a URI line set options for it."),
    _row('deferred-input', None, T.BOOL, 'false', tags=('#advanced',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Read the -i file lazily, one entry at a time, instead of all at startup.'),
    _row('max-concurrent-downloads', 'j', T.INT, '5', lo=1, tags=('#basic',), metavar='=N', flags='G', help='Number of downloads running in parallel. See also --split and --optimize-concurrent-downloads.'),
    _row('optimize-concurrent-downloads', None, T.CONCURRENCY, 'false', tags=('#advanced',), metavar='[=true|false|A:B]', arg=A.OPTIONAL, no_arg_value='true', flags='G', help="Adapt the number of parallel downloads to the measured bandwidth: N = A + B*log10(Mbps). Give 'A:B' to set the coefficients (default 5:25)."),
    _row('force-sequential', 'Z', T.BOOL, 'false', tags=('#basic',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Treat each command-line URI as its own download and run them one after another.'),
    _row('auto-file-renaming', None, T.BOOL, 'true', tags=('#advanced', '#file'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='If the target exists, save as name.N.ext (N = 1..9999) instead (HTTP(S)/FTP only).'),
    _row('parameterized-uri', 'P', T.BOOL, 'false', tags=('#advanced',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DG', help='Expand URI patterns such as {a,b,c} and [000-100:2]. Use -Z when the expansions are different files.'),
    _row('allow-piece-length-change', None, T.BOOL, 'false', tags=('#advanced',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Continue even if the piece length differs from the control file (some progress is lost); otherwise abort.'),
    _row('no-conf', None, T.BOOL, 'false', tags=('#advanced',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Do not load aria2.conf.'),
    _row('conf-path', None, T.STRING, None, tags=('#advanced',), metavar='=PATH', possible='/path/to/file', help='Use PATH as the configuration file.'),
    _row('stop', None, T.INT, '0', lo=0, hi=2147483647, tags=('#advanced',), metavar='=SEC', help='Exit after SEC seconds; 0 disables.'),
    _row('quiet', 'q', T.BOOL, 'false', tags=('#advanced',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Print nothing to the console.'),
    _row('async-dns', None, T.BOOL, 'true', tags=('#advanced',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help="Resolve host names asynchronously (trioaria always uses trio's resolver)."),
    _row('summary-interval', None, T.INT, '60', lo=0, hi=2147483647, tags=('#advanced',), metavar='=SEC', help='Print a progress summary every SEC seconds; 0 disables it.'),
    _row('log-level', None, T.ENUM, 'debug', choices=('debug', 'info', 'notice', 'warn', 'error'), tags=('#advanced',), metavar='=LEVEL', flags='G', help='Minimum level written to the --log file.'),
    _row('console-log-level', None, T.ENUM, 'notice', choices=('debug', 'info', 'notice', 'warn', 'error'), tags=('#advanced',), metavar='=LEVEL', help='Minimum level printed on the console.'),
    _row('uri-selector', None, T.ENUM, 'feedback', choices=('inorder', 'feedback', 'adaptive'), tags=('#http', '#ftp'), metavar='=SELECTOR', flags='DWG', help="How to pick the next mirror: 'inorder' follows the list, 'feedback' prefers the fastest mirror seen so far, 'adaptive' mixes the best mirrors with untested ones."),
    _row('server-stat-timeout', None, T.INT, '86400', lo=0, hi=2147483647, tags=('#http', '#ftp'), metavar='=SEC', help="Forget a server's performance record after SEC seconds without contact."),
    _row('server-stat-if', None, T.PATH, None, tags=('#http', '#ftp'), metavar='=FILE', possible='/path/to/file', help='Load server performance records from FILE (used by the feedback and adaptive selectors).'),
    _row('server-stat-of', None, T.PATH, None, tags=('#http', '#ftp'), metavar='=FILE', possible='/path/to/file', flags='G', help='Save server performance records to FILE.'),
    _row('remote-time', 'R', T.BOOL, 'false', tags=('#http', '#ftp'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help="Set the local file's modification time from the server when available."),
    _row('max-file-not-found', None, T.INT, '0', lo=0, tags=('#http', '#ftp'), metavar='=NUM', flags='DWG', help="Fail the download after NUM 'not found' answers without receiving any data; 0 disables. Counts toward --max-tries."),
    _row('event-poll', None, T.ENUM, 'epoll', choices=('epoll', 'kqueue', 'port', 'libuv', 'poll', 'select'), tags=('#advanced',), metavar='=POLL', help='Event polling backend (accepted for compatibility; trio chooses its own).'),
    _row('enable-rpc', None, T.BOOL, 'false', tags=('#rpc',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Start the JSON-RPC/XML-RPC server. Set --rpc-secret as well.'),
    _row('rpc-listen-port', None, T.INT, '6800', lo=1024, hi=65535, tags=('#rpc',), metavar='=PORT', help='Port of the RPC server.'),
    _row('rpc-user', None, T.STRING, None, tags=('#rpc', '#deprecated'), metavar='=USER', flags='XS', help='RPC user name (deprecated; use --rpc-secret).'),
    _row('rpc-passwd', None, T.STRING, None, tags=('#rpc', '#deprecated'), metavar='=PASSWD', flags='XS', help='RPC password (deprecated; use --rpc-secret).'),
    _row('rpc-max-request-size', None, T.UNIT, '2M', lo=0, tags=('#rpc',), metavar='=SIZE', help='Largest RPC request accepted, in bytes; larger ones close the connection.'),
    _row('rpc-listen-all', None, T.BOOL, 'false', tags=('#rpc',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Listen for RPC on all interfaces instead of loopback only.'),
    _row('rpc-allow-origin-all', None, T.BOOL, 'false', tags=('#rpc',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help="Send 'Access-Control-Allow-Origin: *' in RPC responses."),
    _row('rpc-certificate', None, T.PATH, None, tags=('#rpc',), metavar='=FILE', possible='/path/to/file', flags='E', help='PEM certificate for the RPC server (see --rpc-secure).'),
    _row('rpc-private-key', None, T.PATH, None, tags=('#rpc',), metavar='=FILE', possible='/path/to/file', flags='E', help='Unencrypted PEM private key for the RPC server (see --rpc-secure).'),
    _row('rpc-secure', None, T.BOOL, 'false', tags=('#rpc',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Serve RPC over TLS (https/wss). Needs --rpc-certificate and --rpc-private-key.'),
    _row('rpc-web-ui', None, T.BOOL, 'false', tags=('#rpc',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Serve a small web page at / of the RPC port to list, add, pause and remove downloads (a trioaria extension; open /#token=SECRET).'),
    _row('rpc-save-upload-metadata', None, T.BOOL, 'true', tags=('#rpc',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DG', help='Save torrents and Metalinks added over RPC into --dir, named by their SHA-1, so sessions can restore them.'),
    _row('dry-run', None, T.BOOL, 'false', tags=('#http', '#ftp'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DG', help='Only check that the remote file is available; download nothing. BitTorrent downloads are cancelled.'),
    _row('reuse-uri', None, T.BOOL, 'true', tags=('#http', '#ftp'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Use already-tried URIs again when no fresh ones remain.'),
    _row('on-download-start', None, T.PATH, None, tags=('#advanced', '#hook'), metavar='=COMMAND', possible='/path/to/command', help='Command run when a download starts, called as COMMAND GID NUM_FILES FIRST_PATH.'),
    _row('on-download-pause', None, T.PATH, None, tags=('#advanced', '#hook'), metavar='=COMMAND', possible='/path/to/command', help='Command run when a download is paused (same arguments as --on-download-start).'),
    _row('on-download-stop', None, T.PATH, None, tags=('#advanced', '#hook'), metavar='=COMMAND', possible='/path/to/command', help='Command run when a download stops, unless --on-download-complete or --on-download-error handles it.'),
    _row('on-download-complete', None, T.PATH, None, tags=('#advanced', '#hook'), metavar='=COMMAND', possible='/path/to/command', help='Command run when a download completes (for BitTorrent, after seeding).'),
    _row('on-download-error', None, T.PATH, None, tags=('#advanced', '#hook'), metavar='=COMMAND', possible='/path/to/command', help='Command run when a download fails.'),
    _row('interface', None, T.STRING, None, tags=('#advanced',), metavar='=INTERFACE', possible='interface, IP address, hostname', help='Bind outgoing sockets to this interface name, IP address or host name.'),
    _row('multiple-interface', None, T.STRING, None, tags=('#advanced',), metavar='=INTERFACES', possible='interface, IP address, hostname', help='Comma-separated interfaces to spread connections over. Ignored when --interface is set.'),
    _row('disable-ipv6', None, T.BOOL, 'false', tags=('#advanced',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Do not use IPv6.'),
    _row('human-readable', None, T.BOOL, 'true', tags=('#advanced',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Show sizes and speeds with binary units (1.2Ki, 3.4Mi) in the console readout.'),
    _row('remove-control-file', None, T.BOOL, 'false', tags=('#advanced',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Delete the control file before starting; with --allow-overwrite the download restarts from zero.'),
    _row('always-resume', None, T.BOOL, 'true', tags=('#advanced', '#http', '#ftp'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Always resume; abort if resuming is impossible. With false, restart from zero after --max-resume-failure-tries URIs refuse to resume.'),
    _row('max-resume-failure-tries', None, T.INT, '0', lo=0, tags=('#advanced', '#http', '#ftp'), metavar='=N', flags='DWG', help='With --always-resume=false, restart from zero after N URIs fail to resume (0: when all of them fail).'),
    _row('save-session', None, T.PATH, None, tags=('#advanced',), metavar='=FILE', possible='/path/to/file', flags='G', help='On exit, write unfinished and failed downloads to FILE in -i format (gzip when FILE ends in .gz).'),
    _row('max-connection-per-server', 'x', T.INT, '1', lo=1, hi=65535, tags=('#basic', '#http', '#ftp'), metavar='=NUM', flags='DWG', help='Maximum connections to one server per download. trioaria has no cap of 16.'),
    _row('min-split-size', 'k', T.UNIT, '20M', lo=1048576, hi=1073741824, tags=('#basic', '#http', '#ftp'), metavar='=SIZE', flags='DWG', help='Do not split a range smaller than 2*SIZE: a 20MiB file with SIZE 10M splits in two, with SIZE 15M it does not.'),
    _row('conditional-get', None, T.BOOL, 'false', tags=('#advanced', '#http'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Download only if the remote file is newer than the local one (If-Modified-Since).'),
    _row('select-least-used-host', None, T.BOOL, 'true', tags=(), metavar='=true|false', flags='H', help='Prefer the least-used host among mirrors (hidden in aria2).'),
    _row('enable-async-dns6', None, T.BOOL, None, tags=('#advanced', '#deprecated'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWGX', help='Resolve IPv6 addresses asynchronously (deprecated, ignored).'),
    _row('max-download-result', None, T.INT, '1000', lo=0, tags=('#advanced',), metavar='=NUM', flags='G', help='How many finished download results to keep in memory (oldest dropped first).'),
    _row('retry-wait', None, T.INT, '0', lo=0, hi=600, tags=('#http', '#ftp'), metavar='=SEC', flags='DWG', help='Seconds to wait between retries; a positive value also retries on HTTP 503.'),
    _row('async-dns-server', None, T.STRING, None, tags=('#advanced',), metavar='=IPADDRESS[,...]', help='Comma-separated DNS servers for the asynchronous resolver (accepted; trio uses the system resolver).'),
    _row('show-console-readout', None, T.BOOL, 'true', tags=('#advanced',), metavar='[=true|false]', help='Show the progress readout.'),
    _row('stream-piece-selector', None, T.ENUM, 'default', choices=('default', 'inorder', 'random', 'geom'), tags=('#http', '#ftp'), metavar='=SELECTOR', flags='DWG', help="Piece order for segmented downloads: 'default' minimizes new connections, 'inorder' goes from the start (good for streaming), 'random' picks at random, 'geom' starts in order and spreads out geometrically."),
    _row('truncate-console-readout', None, T.BOOL, 'true', tags=('#advanced',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Cut the readout to one line.'),
    _row('pause', None, T.BOOL, 'false', tags=('#advanced', '#rpc'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='D', help='Add downloads in the paused state (with --enable-rpc).'),
    _row('download-result', None, T.ENUM, 'default', choices=('default', 'full', 'hide'), tags=('#advanced',), metavar='=OPT', flags='G', help="Layout of the 'Download Results' table: 'default', 'full' (every file, and the bytes each mirror served) or 'hide'."),
    _row('hash-check-only', None, T.BOOL, 'false', tags=('#advanced', '#metalink', '#bittorrent', '#file', '#checksum'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Abort after the --check-integrity hash check, complete or not.'),
    _row('checksum', None, T.CHECKSUM, None, tags=('#http', '#ftp', '#checksum'), metavar='=TYPE=DIGEST', possible='HASH_TYPE=HEX_DIGEST', flags='DW', help='Expected checksum as TYPE=HEXDIGEST (md5, sha-1, sha-224, sha-256, sha-384, sha-512, adler32). HTTP(S)/FTP only.'),
    _row('stop-with-process', None, T.INT, None, lo=0, tags=('#advanced',), metavar='=PID', help='Exit when process PID is gone.'),
    _row('enable-mmap', None, T.BOOL, 'false', tags=('#advanced', '#experimental'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Memory-map files (experimental).'),
    _row('force-save', None, T.BOOL, 'false', tags=('#advanced',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DAWG', help='Keep completed and removed downloads in --save-session too (with their control files).'),
    _row('save-not-found', None, T.BOOL, 'true', tags=('#advanced',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DAWG', help="Keep downloads that failed with 'not found' in --save-session."),
    _row('disk-cache', None, T.UNIT, '16M', lo=0, tags=('#advanced',), metavar='=SIZE', help='Size of the in-memory write cache shared by all downloads; 0 disables it.'),
    _row('gid', None, T.STRING, None, tags=('#advanced',), metavar='=GID', flags='D', help="Use GID (16 hex digits, not all zero, unique) as the download's id."),
    _row('save-session-interval', None, T.INT, '0', lo=0, tags=('#advanced',), metavar='=SEC', help='Also save the session every SEC seconds; 0 saves only at exit.'),
    _row('enable-color', None, T.BOOL, 'true', tags=('#advanced',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Use colors on a terminal.'),
    _row('rpc-secret', None, T.STRING, None, tags=('#rpc',), metavar='=TOKEN', flags='S', help="Secret token that RPC calls must pass as 'token:SECRET'."),
    _row('dscp', None, T.INT, '0', lo=0, tags=('#advanced',), metavar='=DSCP', help='DSCP value for outgoing BitTorrent packets (QoS).'),
    _row('pause-metadata', None, T.BOOL, 'false', tags=('#advanced', '#rpc'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Pause the downloads created from a downloaded .torrent, magnet metadata or Metalink.'),
    _row('rlimit-nofile', None, T.INT, '1024', lo=1, tags=('#advanced',), metavar='=NUM', help='Raise the soft limit of open file descriptors to NUM (never lowers it).'),
    _row('min-tls-version', None, T.ENUM, 'TLSv1.2', choices=('TLSv1.1', 'TLSv1.2', 'TLSv1.3'), tags=('#advanced',), metavar='=VERSION', help='Lowest TLS version to accept.'),
    _row('socket-recv-buffer-size', None, T.UNIT, '0', lo=0, hi=16777216, tags=('#advanced',), metavar='=SIZE', help='Set SO_RCVBUF to SIZE bytes; 0 leaves it alone.'),
    _row('max-mmap-limit', None, T.UNIT, '9223372036854775807', lo=0, tags=('#advanced',), metavar='=SIZE', flags='DWG', help='Largest total download size for which --enable-mmap applies.'),
    _row('stderr', None, T.BOOL, 'false', tags=('#advanced',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Print console output to stderr instead of stdout.'),
    _row('keep-unfinished-download-result', None, T.BOOL, 'true', tags=('#advanced',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='G', help='Keep unfinished results beyond --max-download-result so --save-session sees them all.'),
    _row('ftp-user', None, T.STRING, None, tags=('#basic', '#ftp'), metavar='=USER', flags='DWGS', help='FTP user name for all URIs.'),
    _row('ftp-passwd', None, T.STRING, None, tags=('#basic', '#ftp'), metavar='=PASSWD', flags='DWGS', help='FTP password for all URIs.'),
    _row('ftp-type', None, T.ENUM, 'binary', choices=('binary', 'ascii'), tags=('#ftp',), metavar='=TYPE', flags='DWG', help='FTP transfer type.'),
    _row('ftp-pasv', 'p', T.BOOL, 'true', tags=('#ftp',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Use passive FTP (false: active mode).'),
    _row('ftp-reuse-connection', None, T.BOOL, 'true', tags=('#ftp',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Reuse FTP control connections.'),
    _row('ssh-host-key-md', None, T.CHECKSUM, None, choices=('sha-1', 'md5', 'sha-256'), tags=('#ftp',), metavar='=TYPE=DIGEST', possible='HASH_TYPE=HEX_DIGEST', flags='DWG', help='Expected SSH host key fingerprint as TYPE=HEXDIGEST (sha-1 or md5; trioaria also sha-256).'),
    _row('ssh-private-key', None, T.PATH, None, tags=('#ftp',), metavar='=FILE', possible='/path/to/file', flags='E', help='Private key file for SFTP public-key login (a trioaria extension; default: ~/.ssh/id_* without a passphrase).'),
    _row('http-user', None, T.STRING, None, tags=('#basic', '#http'), metavar='=USER', flags='DWGS', help='HTTP user name for all URIs (Basic, or Digest when the server asks for it).'),
    _row('http-passwd', None, T.STRING, None, tags=('#basic', '#http'), metavar='=PASSWD', flags='DWGS', help='HTTP password for all URIs.'),
    _row('user-agent', 'U', T.STRING, f"trioaria/{__version__}", tags=('#http',), metavar='=USER_AGENT', flags='DWG', help='User-Agent header for HTTP(S).'),
    _row('load-cookies', None, T.PATH, None, tags=('#basic', '#http', '#cookie'), metavar='=FILE', possible='/path/to/file', help='Load cookies from FILE (Netscape/Mozilla text, Firefox 3 or Chromium sqlite).'),
    _row('save-cookies', None, T.PATH, None, tags=('#http', '#cookie'), metavar='=FILE', possible='/path/to/file', flags='G', help='Save cookies to FILE in Netscape format, overwriting it; session cookies get expiry 0.'),
    _row('enable-http-keep-alive', None, T.BOOL, 'true', tags=('#http',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Use HTTP/1.1 persistent connections.'),
    _row('enable-http-pipelining', None, T.BOOL, 'false', tags=('#http',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Use HTTP/1.1 pipelining.'),
    _row('max-http-pipelining', None, T.INT, '2', lo=1, hi=8, tags=(), metavar='=NUM', flags='H', help='Maximum pipelined requests per connection (hidden in aria2).'),
    _row('header', None, T.LIST, None, tags=('#http',), metavar='=HEADER', flags='DWG', help='Add HEADER to HTTP requests. Repeat the option for more headers.'),
    _row('certificate', None, T.PATH, None, tags=('#http', '#https'), metavar='=FILE', possible='/path/to/file', flags='E', help='Client certificate (PEM) for TLS. See --private-key.'),
    _row('private-key', None, T.PATH, None, tags=('#http', '#https'), metavar='=FILE', possible='/path/to/file', help='Unencrypted PEM private key for the client certificate.'),
    _row('ca-certificate', None, T.PATH, None, tags=('#http', '#https'), metavar='=FILE', possible='/path/to/file', help='PEM file of trusted certificate authorities.'),
    _row('check-certificate', None, T.BOOL, 'true', tags=('#http', '#https'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Verify the server certificate.'),
    _row('use-head', None, T.BOOL, 'false', tags=('#http',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Send HEAD as the first request to an HTTP server.'),
    _row('http-auth-challenge', None, T.BOOL, 'false', tags=('#http',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Send credentials only after the server asks (credentials in the URI are always sent).'),
    _row('http-no-cache', None, T.BOOL, 'false', tags=('#http',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help="Send 'Cache-Control: no-cache' and 'Pragma: no-cache'."),
    _row('http-accept-gzip', None, T.BOOL, 'false', tags=('#http',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Ask for gzip/deflate content encoding and decode it.'),
    _row('content-disposition-default-utf8', None, T.BOOL, 'false', tags=('#advanced', '#http'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Decode quoted Content-Disposition values as UTF-8 instead of ISO-8859-1.'),
    _row('no-want-digest-header', None, T.BOOL, 'false', tags=('#http',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Do not send the Want-Digest request header.'),
    _row('http-proxy', None, T.PROXY, None, tags=('#http',), metavar='=PROXY', possible='[SCHEME://][USER:PASSWORD@]HOST[:PORT], SCHEME: http, https, socks5, socks5h, socks4, socks4a', flags='DWG', help='Proxy for HTTP. An empty value cancels an earlier setting. See --all-proxy.'),
    _row('https-proxy', None, T.PROXY, None, tags=('#http', '#https'), metavar='=PROXY', possible='[SCHEME://][USER:PASSWORD@]HOST[:PORT], SCHEME: http, https, socks5, socks5h, socks4, socks4a', flags='DWG', help='Proxy for HTTPS. An empty value cancels an earlier setting. See --all-proxy.'),
    _row('ftp-proxy', None, T.PROXY, None, tags=('#ftp',), metavar='=PROXY', possible='[SCHEME://][USER:PASSWORD@]HOST[:PORT], SCHEME: http, https, socks5, socks5h, socks4, socks4a', flags='DWG', help='Proxy for FTP, FTPS and SFTP. An empty value cancels an earlier setting (--all-proxy then applies). See --all-proxy.'),
    _row('all-proxy', None, T.PROXY, None, tags=('#http', '#https', '#ftp'), metavar='=PROXY', possible='[SCHEME://][USER:PASSWORD@]HOST[:PORT], SCHEME: http, https, socks5, socks5h, socks4, socks4a', flags='DWG', help='Proxy for every protocol; --http-proxy, --https-proxy and --ftp-proxy override it. https:// means TLS to the proxy; socks5h:// and socks4a:// let the proxy resolve names.'),
    _row('no-proxy', None, T.STRING, None, tags=('#http', '#https', '#ftp'), metavar='=DOMAINS', possible='HOSTNAME,DOMAIN,NETWORK/CIDR', flags='DWG', help='Comma-separated host names, domains and networks (CIDR allowed) reached without a proxy.'),
    _row('proxy-method', None, T.ENUM, 'get', choices=('get', 'tunnel'), tags=('#http', '#ftp'), metavar='=METHOD', flags='DWG', help="How to use an HTTP proxy for http:// and ftp://: 'get' (plain request) or 'tunnel' (CONNECT). https://, FTPS, SFTP and SOCKS always tunnel."),
    _row('http-proxy-user', None, T.STRING, None, tags=('#http',), metavar='=USER', flags='DWGS', help='User name for --http-proxy.'),
    _row('http-proxy-passwd', None, T.STRING, None, tags=('#http',), metavar='=PASSWD', flags='DWGS', help='Password for --http-proxy.'),
    _row('https-proxy-user', None, T.STRING, None, tags=('#http', '#https'), metavar='=USER', flags='DWGS', help='User name for --https-proxy.'),
    _row('https-proxy-passwd', None, T.STRING, None, tags=('#http', '#https'), metavar='=PASSWD', flags='DWGS', help='Password for --https-proxy.'),
    _row('ftp-proxy-user', None, T.STRING, None, tags=('#ftp',), metavar='=USER', flags='DWGS', help='User name for --ftp-proxy.'),
    _row('ftp-proxy-passwd', None, T.STRING, None, tags=('#ftp',), metavar='=PASSWD', flags='DWGS', help='Password for --ftp-proxy.'),
    _row('all-proxy-user', None, T.STRING, None, tags=('#http', '#https', '#ftp'), metavar='=USER', flags='DWGS', help='User name for --all-proxy.'),
    _row('all-proxy-passwd', None, T.STRING, None, tags=('#http', '#https', '#ftp'), metavar='=PASSWD', flags='DWGS', help='Password for --all-proxy.'),
    _row('peer-connection-timeout', None, T.INT, '20', lo=1, hi=600, tags=(), metavar='=SEC', flags='H', help='Seconds allowed to connect to a peer (hidden in aria2).'),
    _row('bt-timeout', None, T.INT, '180', lo=1, hi=600, tags=(), metavar='=SEC', flags='H', help='Seconds of silence before a peer connection is closed (hidden in aria2).'),
    _row('bt-request-timeout', None, T.INT, '60', lo=1, hi=600, tags=(), metavar='=SEC', flags='H', help='Seconds before an unanswered piece request is dropped (hidden in aria2).'),
    _row('show-files', 'S', T.BOOL, 'false', tags=('#basic', '#metalink', '#bittorrent'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='List the files of a .torrent, .meta4 or .metalink and exit.'),
    _row('max-overall-upload-limit', None, T.UNIT, '0', lo=0, tags=('#basic', '#bittorrent'), metavar='=SPEED', flags='G', help='Cap on the total upload speed in bytes/s; 0 means unlimited.'),
    _row('max-upload-limit', 'u', T.UNIT, '0', lo=0, tags=('#basic', '#bittorrent'), metavar='=SPEED', flags='DAWG', help='Cap on the upload speed of each torrent in bytes/s; 0 means unlimited.'),
    _row('torrent-file', 'T', T.PATH, None, tags=('#basic', '#bittorrent'), metavar='=TORRENT_FILE', possible='/path/to/file', flags='E', help='Path of a .torrent file.'),
    _row('listen-port', None, T.INT_RANGE, '6881-6999', lo=1024, hi=65535, tags=('#basic', '#bittorrent'), metavar='=PORT...', help="TCP port(s) for incoming BitTorrent connections, e.g. '6881,6885' or '6881-6999'."),
    _row('follow-torrent', None, T.ENUM, 'true', choices=('true', 'mem', 'false'), tags=('#bittorrent',), metavar='=true|false|mem', flags='DWG', help="When a downloaded file is a torrent, download its contents too; 'mem' keeps the .torrent in memory only."),
    _row('select-file', None, T.INT_RANGE, None, lo=1, hi=1048576, tags=('#metalink', '#bittorrent'), metavar='=INDEX...', flags='DW', help="Download only the files with these indexes (see -S), e.g. '3,6' or '1-5'."),
    _row('seed-time', None, T.FLOAT, None, lo=0.0, tags=('#bittorrent',), metavar='=MINUTES', flags='DWG', help='Seed for this many (fractional) minutes. See --seed-ratio.'),
    _row('seed-ratio', None, T.FLOAT, '1.0', lo=0.0, tags=('#bittorrent',), metavar='=RATIO', flags='DWG', help='Seed until the share ratio reaches RATIO; 0.0 ignores the ratio. With --seed-time, whichever comes first ends seeding.'),
    _row('bt-keep-alive-interval', None, T.INT, '120', lo=1, hi=120, tags=(), metavar='=SEC', flags='H', help='Seconds between BitTorrent keep-alive messages (hidden in aria2).'),
    _row('peer-id-prefix', None, T.STRING, _PEER_ID_PREFIX, tags=('#bittorrent',), metavar='=PEER_ID_PREFIX', help='Prefix of the 20-byte peer ID; the rest is random.'),
    _row('peer-agent', None, T.STRING, f"trioaria/{__version__}", tags=('#bittorrent',), metavar='=PEER_AGENT', help='Client name sent in the BitTorrent extension handshake.'),
    _row('enable-peer-exchange', None, T.BOOL, 'true', tags=('#bittorrent',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Use the peer exchange extension (PEX).'),
    _row('enable-dht', None, T.BOOL, 'true', tags=('#basic', '#bittorrent'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Use the IPv4 DHT (also enables UDP trackers). Private torrents never use it.'),
    _row('dht-listen-addr', None, T.STRING, None, tags=('#basic', '#bittorrent'), metavar='=ADDR', flags='H', help='Address for the IPv4 DHT socket (hidden in aria2).'),
    _row('dht-listen-port', None, T.INT_RANGE, '6881-6999', lo=1024, hi=65535, tags=('#basic', '#bittorrent'), metavar='=PORT...', help="UDP port(s) for the DHT and UDP trackers, e.g. '6881-6999'."),
    _row('dht-entry-point', None, T.HOST_PORT, None, tags=('#bittorrent',), metavar='=HOST:PORT', possible='HOST:PORT', help='HOST:PORT used to join the IPv4 DHT.'),
    _row('dht-file-path', None, T.PATH, None, tags=('#bittorrent',), metavar='=PATH', possible='/path/to/file', help='File holding the IPv4 DHT routing table.'),
    _row('enable-dht6', None, T.BOOL, 'false', tags=('#basic', '#bittorrent'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Use the IPv6 DHT. See --dht-listen-addr6.'),
    _row('dht-listen-addr6', None, T.STRING, None, tags=('#basic', '#bittorrent'), metavar='=ADDR', help='Global unicast IPv6 address for the IPv6 DHT socket.'),
    _row('dht-entry-point6', None, T.HOST_PORT, None, tags=('#bittorrent',), metavar='=HOST:PORT', possible='HOST:PORT', help='HOST:PORT used to join the IPv6 DHT.'),
    _row('dht-file-path6', None, T.PATH, None, tags=('#bittorrent',), metavar='=PATH', possible='/path/to/file', help='File holding the IPv6 DHT routing table.'),
    _row('dht-default-bootstrap', None, T.BOOL, 'true', tags=('#bittorrent',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Join the DHT through built-in public bootstrap nodes when the routing table is empty and no --dht-entry-point is set (a trioaria extension; TRIOARIA_NO_DEFAULT_BOOTSTRAP=1 also turns it off).'),
    _row('bt-min-crypto-level', None, T.ENUM, 'plain', choices=('plain', 'arc4'), tags=('#bittorrent',), metavar='=plain|arc4', flags='DWG', help='Weakest accepted encryption method for BitTorrent peers.'),
    _row('bt-require-crypto', None, T.BOOL, 'false', tags=('#bittorrent',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Refuse plain BitTorrent handshakes; always use the obfuscated (MSE) handshake.'),
    _row('bt-request-peer-speed-limit', None, T.UNIT, '50K', lo=0, tags=('#bittorrent',), metavar='=SPEED', flags='DAWG', help='Look for more peers while the total speed of all torrents is below SPEED.'),
    _row('bt-max-open-files', None, T.INT, '100', lo=1, tags=('#bittorrent',), metavar='=NUM', flags='G', help='Open files allowed at once across multi-file BitTorrent/Metalink downloads.'),
    _row('bt-seed-unverified', None, T.BOOL, 'false', tags=('#bittorrent',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Seed existing files without checking piece hashes.'),
    _row('bt-hash-check-seed', None, T.BOOL, 'true', tags=('#bittorrent', '#checksum'), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='After a successful -V check of a complete file, go on seeding.'),
    _row('bt-max-peers', None, T.INT, '55', lo=0, tags=('#bittorrent',), metavar='=NUM', flags='DAWG', help='Peers per torrent; 0 means unlimited.'),
    _row('bt-external-ip', None, T.STRING, None, tags=('#bittorrent',), metavar='=IPADDRESS', possible='a numeric IP address', flags='DWG', help='IP address reported to trackers and the DHT (any address works; useful in private networks).'),
    _row('index-out', 'O', T.LIST, None, tags=('#bittorrent',), metavar='=INDEX=PATH', possible='INDEX=PATH', flags='DW', help='Save the file with index INDEX under PATH (relative to --dir). Repeatable.'),
    _row('bt-tracker-interval', None, T.INT, '0', lo=0, tags=('#bittorrent',), metavar='=SEC', flags='DWG', help='Seconds between announces, overriding the tracker; 0 follows the tracker.'),
    _row('bt-stop-timeout', None, T.INT, '0', lo=0, tags=('#bittorrent',), metavar='=SEC', flags='DWG', help='Stop a torrent after SEC seconds at zero speed; 0 disables.'),
    _row('bt-prioritize-piece', None, T.PIECE_PRIORITY, None, tags=('#bittorrent',), metavar='=head[=SIZE],tail[=SIZE]', possible='head[=SIZE], tail[=SIZE]', flags='DWG', help="Fetch the first and/or last pieces of each file first (preview): 'head[=SIZE]', 'tail[=SIZE]' or both, comma-separated; SIZE defaults to 1M."),
    _row('trace', None, T.PATH, None, tags=('#bittorrent', '#advanced'), metavar='=FILE', possible='/path/to/file', help='Write every BitTorrent peer-wire and tracker message, both directions, to FILE as one JSON object per line (a trioaria extension; schema in the README).'),
    _row('bt-save-metadata', None, T.BOOL, 'false', tags=('#bittorrent',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Save magnet metadata as <infohash>.torrent next to the download.'),
    _row('bt-metadata-only', None, T.BOOL, 'false', tags=('#bittorrent',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='For magnets, fetch only the metadata.'),
    _row('bt-enable-lpd', None, T.BOOL, 'false', tags=('#bittorrent',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Use Local Peer Discovery.'),
    _row('bt-lpd-interface', None, T.STRING, None, tags=('#bittorrent',), metavar='=INTERFACE', possible='interface, IP address', help='Interface name or IP address for Local Peer Discovery.'),
    _row('bt-tracker-timeout', None, T.INT, '60', lo=1, hi=600, tags=('#bittorrent',), metavar='=SEC', flags='DWG', help='Tracker request timeout in seconds.'),
    _row('bt-tracker-connect-timeout', None, T.INT, '60', lo=1, hi=600, tags=('#bittorrent',), metavar='=SEC', flags='DWG', help='Seconds allowed to connect to a tracker; afterwards --bt-tracker-timeout applies.'),
    _row('dht-message-timeout', None, T.INT, '10', lo=1, hi=60, tags=('#bittorrent',), metavar='=SEC', help='DHT message timeout in seconds.'),
    _row('on-bt-download-complete', None, T.PATH, None, tags=('#advanced', '#hook'), metavar='=COMMAND', possible='/path/to/command', help='Command run when a torrent completes, before seeding.'),
    _row('bt-tracker', None, T.STRING, None, tags=('#bittorrent',), metavar='=URI[,...]', possible='URI,...', flags='DWG', help='Comma-separated extra announce URIs (added after --bt-exclude-tracker is applied).'),
    _row('bt-exclude-tracker', None, T.STRING, None, tags=('#bittorrent',), metavar='=URI[,...]', possible='URI,... or *', flags='DWG', help="Comma-separated announce URIs to drop; '*' drops them all."),
    _row('bt-remove-unselected-file', None, T.BOOL, 'false', tags=('#bittorrent',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DAWG', help='Delete files not chosen with --select-file when the download completes.'),
    _row('bt-detach-seed-only', None, T.BOOL, 'false', tags=('#bittorrent',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', help='Do not count seeding-only downloads against -j.'),
    _row('bt-force-encryption', None, T.BOOL, 'false', tags=('#bittorrent',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Encrypt BitTorrent payload with arc4 (same as --bt-require-crypto --bt-min-crypto-level=arc4).'),
    _row('bt-enable-hook-after-hash-check', None, T.BOOL, 'true', tags=('#bittorrent',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Run --on-bt-download-complete after a successful -V hash check.'),
    _row('bt-load-saved-metadata', None, T.BOOL, 'false', tags=('#bittorrent',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='For magnets, try a .torrent saved by --bt-save-metadata before asking the swarm.'),
    _row('metalink-file', 'M', T.PATH, None, tags=('#basic', '#metalink'), metavar='=METALINK_FILE', possible='/path/to/file, -', flags='EI', help="Path of a .meta4 or .metalink file ('-' for stdin)."),
    _row('metalink-version', None, T.STRING, None, tags=('#metalink',), metavar='=VERSION', flags='DWG', help='Version of the file to pick from the Metalink.'),
    _row('metalink-language', None, T.STRING, None, tags=('#metalink',), metavar='=LANGUAGE', flags='DWG', help='Language of the file to pick from the Metalink.'),
    _row('metalink-os', None, T.STRING, None, tags=('#metalink',), metavar='=OS', flags='DWG', help='Operating system of the file to pick from the Metalink.'),
    _row('metalink-location', None, T.STRING, None, tags=('#metalink',), metavar='=LOCATION[,...]', flags='DWG', help='Preferred mirror locations, comma-separated.'),
    _row('follow-metalink', None, T.ENUM, 'true', choices=('true', 'mem', 'false'), tags=('#metalink',), metavar='=true|false|mem', flags='DWG', help="When a downloaded file is a Metalink, download its contents too; 'mem' keeps it in memory only."),
    _row('metalink-preferred-protocol', None, T.ENUM, 'none', choices=('http', 'https', 'ftp', 'none'), tags=('#metalink',), metavar='=PROTO', flags='DWG', help="Preferred protocol among Metalink mirrors; 'none' for no preference."),
    _row('metalink-enable-unique-protocol', None, T.BOOL, 'true', tags=('#metalink',), metavar='[=true|false]', arg=A.OPTIONAL, no_arg_value='true', flags='DWG', help='Use only one protocol per mirror when a Metalink offers several.'),
    _row('metalink-base-uri', None, T.STRING, None, tags=('#metalink',), metavar='=URI', flags='DG', help="Base URI for relative URLs in a local Metalink file (end directories with '/')."),
)
# fmt: on


#: Every option, keyed by its long name, in aria2's order.
OPTIONS: dict[str, OptionSpec] = {spec.name: spec for spec in _ROWS}

#: Short flag -> long name (``"x"`` -> ``"max-connection-per-server"``).
SHORT_OPTIONS: dict[str, str] = {spec.short: spec.name for spec in _ROWS if spec.short is not None}

if not IMPLEMENTED.issubset(OPTIONS):  # pragma: no cover - a typo in the list above
    raise AssertionError(f"unknown names in IMPLEMENTED: {sorted(IMPLEMENTED - OPTIONS.keys())}")
if not REFUSED.keys() <= OPTIONS.keys() - IMPLEMENTED:  # pragma: no cover - same, for REFUSED
    raise AssertionError(f"bad names in REFUSED: {sorted(REFUSED.keys() & IMPLEMENTED)}")
