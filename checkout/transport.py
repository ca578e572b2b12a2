"""What midtransclient calls as its ``requests``: one ``request`` method, made with urllib3.

midtransclient needs nothing of a ``requests.Session`` but ``request(method,
url, auth=, data=, params=, headers=, ...)`` returning something with
``status_code``, ``text`` and ``json()``. Going through requests doubled the
client CPU of each call (preparing the request, merging settings and
headers, cookies, hooks: 0.57–0.68 against 0.28–0.34 ms, docs/benchmarks.md),
so this makes the call straight on urllib3's pools, which requests uses
underneath.

Kept from requests: a timeout on every call, pooled keep-alive connections
(one pool per host, shared by every thread: urllib3's pools are
thread-safe), certificate checks against certifi or REQUESTS_CA_BUNDLE /
CURL_CA_BUNDLE, the proxy for each Midtrans host from HTTPS_PROXY /
HTTP_PROXY / NO_PROXY (read once, when the transport is made), gzip, and
requests' exceptions (``requests.Timeout``, ``requests.ConnectionError``…),
which ``checkout.gateway`` translates. Changed on purpose: redirects are
never followed, since every request carries the server key; a redirect is
an answer that is not JSON.
"""

import json
import os
from typing import Any
from urllib.parse import urlencode, urlsplit

import certifi
import requests
import urllib3
from django.core.exceptions import ImproperlyConfigured
from urllib3 import exceptions as u3

__all__ = ["Answer", "MidtransTransport"]


class Answer:
    """The part of ``requests.Response`` midtransclient reads."""

    def __init__(self, status_code: int, content: bytes, headers: Any) -> None:
        self.status_code = status_code
        self.content = content
        self.headers = headers

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")  # JSON is UTF-8 (RFC 8259)

    def json(self) -> Any:
        """Decode the body; raise ``json.JSONDecodeError`` (what midtransclient catches) when it is not JSON."""
        return json.loads(self.text)


class MidtransTransport:
    """Pooled, always-timed HTTP calls to Midtrans's hosts, with the environment's proxies and CA bundle read once."""

    def __init__(self, timeout: tuple[float, float], pool_size: int = 32, base_urls: tuple[str, ...] = ()) -> None:
        self.timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
        self.ca_certs = bundle
        trust = {"ca_cert_dir": bundle} if os.path.isdir(bundle) else {"ca_certs": bundle}
        # block=False: a burst past pool_size opens extra connections rather than waiting for one.
        self._pool_kw = {"maxsize": pool_size, "block": False, "retries": False, "timeout": self.timeout,
                         "cert_reqs": "CERT_REQUIRED", **trust}
        self._direct = urllib3.PoolManager(num_pools=8, **self._pool_kw)
        self.proxies: dict[str, str] = {}  # "scheme://host" -> proxy URL (without its credentials)
        self._via: dict[str, urllib3.ProxyManager] = {}
        for url in base_urls:
            self._add_proxy_for(url)

    def _add_proxy_for(self, url: str) -> None:
        parts = urlsplit(url)
        found = requests.utils.get_environ_proxies(url)  # {} when NO_PROXY covers the host
        proxy = found.get(parts.scheme) or found.get("all")
        if not proxy or not parts.hostname:
            return
        proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if proxy_parts.scheme not in ("http", "https"):
            raise ImproperlyConfigured(f"Only http(s) proxies are supported for Midtrans, not {proxy_parts.scheme}")
        headers = None
        if proxy_parts.username:
            headers = urllib3.make_headers(proxy_basic_auth=f"{proxy_parts.username}:{proxy_parts.password or ''}")
        origin = f"{parts.scheme}://{parts.hostname}"
        bare = proxy_parts._replace(netloc=proxy_parts.netloc.rpartition("@")[2]).geturl()  # no password kept
        self.proxies[origin] = bare
        self._via[origin] = urllib3.ProxyManager(bare, proxy_headers=headers, **self._pool_kw)

    def request(self, method: str, url: str, *, auth: Any = None, data: str | bytes | None = None,
                params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                **ignored: Any) -> Answer:
        """Make one call as ``requests.request`` would, with this transport's timeout.

        midtransclient's ``proxies`` and ``allow_redirects`` are ignored: the
        proxies were resolved when the transport was made, and redirects are
        never followed.
        """
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params, doseq=True)}"
        sent = {"accept-encoding": "gzip, deflate", **(headers or {})}
        if auth is not None:
            sent.update(urllib3.make_headers(basic_auth=f"{auth.username}:{auth.password}"))
        body = data.encode() if isinstance(data, str) else data
        parts = urlsplit(url)
        pool = self._via.get(f"{parts.scheme}://{parts.hostname}", self._direct)
        try:
            answer = pool.request(method.upper(), url, body=body, headers=sent, redirect=False)
        except u3.ReadTimeoutError as exc:
            raise requests.ReadTimeout(exc) from exc
        except u3.NewConnectionError as exc:  # before ConnectTimeoutError, which it subclasses
            raise requests.ConnectionError(exc) from exc
        except u3.ConnectTimeoutError as exc:
            raise requests.ConnectTimeout(exc) from exc
        except u3.ProxyError as exc:
            raise requests.exceptions.ProxyError(exc) from exc
        except u3.SSLError as exc:
            raise requests.exceptions.SSLError(exc) from exc
        except (u3.HTTPError, OSError) as exc:
            raise requests.ConnectionError(exc) from exc
        return Answer(answer.status, answer.data, answer.headers)
