"""Options that are parsed but not honoured yet: which only warn and which are refused (pure).

Every aria2 option name is accepted so that existing ``aria2.conf`` files and ``-i`` lists keep
working (docs/decisions.md).  An option the engine does not implement yet is, by default,
warned about once and otherwise ignored.  That is wrong for an option whose silent omission
changes where traffic goes (``--interface`` ignored means using the default route; issue 15).
Those options are listed in :data:`~trioaria.cli.option_table.REFUSED`, and setting one
anywhere (command line, ``aria2.conf``, an ``-i`` entry) is an option error, exit 28, naming
it, until it is implemented.  The proxy options are implemented (:mod:`trioaria.net.proxy`).

aria2 also takes ``http_proxy``, ``https_proxy``, ``ftp_proxy``, ``all_proxy`` and ``no_proxy``
from the environment (``src/option_processing.cc``); :func:`proxy_environment_options` turns
them into option values that sit between the conf file and the command line, as in aria2.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from trioaria.base.errors import OptionError
from trioaria.cli.option_table import OPTIONS, REFUSED, OptType
from trioaria.cli.values import parse_value

__all__ = [
    "RefusedOptionError",
    "check_refused",
    "proxy_environment_options",
    "status_note",
    "unimplemented_names",
    "unsupported_warning",
]


class RefusedOptionError(OptionError):
    """A refused option was set (exit 28); ``option`` names it."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


def unsupported_warning(name: str) -> str:
    """The one-line warning printed once for an accepted but unimplemented option."""
    return (
        f"--{name} is accepted for aria2 compatibility but not implemented yet; it has "
        "no effect (see --help=#unsupported)."
    )


def _is_refused(name: str, raw: str) -> bool:
    spec = OPTIONS.get(name)
    if spec is None or not spec.refused:
        return False
    # an empty address ("--x=") would cancel the setting: nothing is then ignored
    return not (spec.type is OptType.PROXY and not raw.strip())


def check_refused(given: Mapping[str, str], *, where: str) -> None:
    """Refuse the options in ``given`` that must not be ignored.

    Args:
        given: raw ``{name: value}`` from one source (command line, conf file, ``-i`` entry).
        where: that source, for the message (``"the command line"``, a file name...).

    Raises:
        RefusedOptionError: the first refused option in ``given`` (exit 28), e.g.
            ``option '--all-proxy' (set in the command line) is not supported: proxies are not
            implemented yet, and trioaria would connect directly``.
    """
    for name, raw in given.items():
        if _is_refused(name, raw):
            raise RefusedOptionError(
                name,
                f"option '--{name}' (set in {where}) is not supported: {REFUSED[name]}; "
                "remove it to go on without it",
            )


def unimplemented_names(given: Iterable[str]) -> list[str]:
    """The names in ``given`` that are accepted but not implemented (each deserves a warning)."""
    return [
        name
        for name in given
        if name in OPTIONS and not OPTIONS[name].implemented and not OPTIONS[name].refused
    ]


def status_note(name: str) -> str:
    """What ``--help`` says about an option that is parsed but not honoured ("" otherwise)."""
    spec = OPTIONS[name]
    if spec.implemented:
        return ""
    if spec.refused:
        return "(not implemented) Refused until it is: setting it is an error (exit 28)."
    return "(not implemented) Accepted and ignored, with a warning."


def proxy_environment_options(
    env: Mapping[str, str],
) -> tuple[dict[str, str], list[str]]:
    """The proxy options the environment sets, and one warning per unusable variable.

    ``http_proxy``, ``https_proxy``, ``ftp_proxy``, ``all_proxy`` and ``no_proxy`` (lower case
    winning over upper case) become ``{option: value}``.  As aria2's ``overrideWithEnv``, a
    value that does not parse is reported and skipped; it never stops the program.
    """
    from trioaria.net.proxy import proxy_variables  # only when one is set (app._proxy_environment)

    out: dict[str, str] = {}
    warnings: list[str] = []
    for option, (variable, value) in proxy_variables(env).items():
        try:
            parse_value(OPTIONS[option], value)
        except OptionError as exc:
            warnings.append(f"the environment variable {variable} is ignored: {exc}")
            continue
        out[option] = value
    return out, warnings
