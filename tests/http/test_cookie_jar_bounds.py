"""The cookie jar's limits (aria2's CookieStorage): 50 cookies a domain and 2000 domains, the
least recently stored going first, and no cookie over 4 KiB, also when it would replace another.
(The cost of a store, a dict operation or two, is the bench's business, not a timed assert.)"""

from __future__ import annotations

import time

from trioaria.http.cookies import MAX_DOMAINS, MAX_PER_DOMAIN, Cookie, CookieJar


def _cookies(n: int, domains: int) -> list[Cookie]:
    def one(i: int) -> Cookie:
        return Cookie(
            name=f"n{i}", value="v", domain=f"d{i % domains}.example", path="/", expiry=2e9,
            persistent=True, host_only=False, secure=False, http_only=False, creation=1.0,
        )  # fmt: skip

    return [one(i) for i in range(n)]


def test_a_heavy_profile_within_the_limits_is_kept_whole() -> None:
    jar = CookieJar(_cookies(12_000, 1_200))
    assert len(jar) == 12_000


def test_past_the_domain_limit_the_least_recently_stored_domains_go() -> None:
    jar = CookieJar(_cookies(6_000, 3_000))
    domains = {c.domain for c in jar.cookies()}
    assert len(domains) == MAX_DOMAINS
    assert "d2999.example" in domains and "d0.example" not in domains


def test_past_the_per_domain_limit_the_least_recently_stored_cookies_go() -> None:
    jar = CookieJar(_cookies(MAX_PER_DOMAIN + 10, 1))
    names = [c.name for c in jar.cookies()]
    assert len(names) == MAX_PER_DOMAIN and "n0" not in names and f"n{MAX_PER_DOMAIN + 9}" in names


def test_size_limit_holds_for_a_replaced_cookie() -> None:
    """A server that first sets a=1 and then a=<60 KiB> (h11 takes heads up to 64 KiB): the big
    one is ignored and a=1 stays (aria2's cookie parser drops an oversized cookie)."""
    jar = CookieJar()
    now = time.time()
    jar.receive("a=1", "h.example", "/", now)
    jar.receive("a=" + "x" * 60_000, "h.example", "/", now)
    assert [(c.name, c.value) for c in jar.cookies()] == [("a", "1")]
