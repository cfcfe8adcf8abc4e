"""Webhooks: a notification POSTed as JSON to its subscription's URL, signed with the subscription's secret.

    Content-Type: application/json
    Gateway-Event-Id: evt_...     the event's id, the same at every attempt: a receiver deduplicates by it
    Gateway-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The signature is made at each attempt, with a fresh time, so a receiver may refuse old ones (replays). A 2xx
answer delivers it; 410 Gone asks the gateway to stop (dead at once); any other answer, a redirect (never
followed) or a network error is retried by the delivery queue. Each attempt checks the target again
(gateway.notify.ssrf) and connects to an address it checked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from gateway.config import NotifySettings
from gateway.data.models import Subscription
from gateway.notify import ssrf
from gateway.route.channels import PermanentDeliveryError, TransientDeliveryError

EVENT_HEADER = "Gateway-Event-Id"
SIGNATURE_HEADER = "Gateway-Signature"
MAX_URL = 2048
_PORTS = {"http": 80, "https": 443}


def target(url: str, allow_private: bool) -> tuple[httpx.URL, list[ssrf.Address]]:
    """url parsed, and the addresses its host resolves to, each allowed. Raises ValueError (not an http(s)
    URL a webhook may have), ssrf.Unresolved or ssrf.TargetRefused."""
    if len(url) > MAX_URL or any(c.isspace() or not c.isprintable() for c in url):
        raise ValueError(f"a URL of at most {MAX_URL} printable characters, without spaces")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(str(exc)) from exc
    if parsed.scheme not in _PORTS or not parsed.raw_host:
        raise ValueError("an http:// or https:// URL with a host")
    if parsed.userinfo:
        raise ValueError("no credentials in the URL: the receiver checks the signature instead")
    port = parsed.port or _PORTS[parsed.scheme]
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    return parsed, ssrf.checked(parsed.raw_host.decode("ascii"), port, allow_private)


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The Gateway-Signature header's value."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookChannel:
    """Delivery of a stored notification (its JSON body) to one webhook subscription."""

    def __init__(self, subscription: Subscription, settings: NotifySettings) -> None:
        self.subscription = subscription
        self.settings = settings

    def deliver(self, destination: str, file_name: str, content: bytes) -> str:
        try:
            url, addresses = target(self.subscription.target, self.settings.allow_private)
        except ValueError as exc:  # malformed, or ssrf.TargetRefused
            raise PermanentDeliveryError(f"webhook refused: {exc}") from exc
        except ssrf.Unresolved as exc:
            raise TransientDeliveryError(str(exc)) from exc
        shown = f"{url.scheme}://{url.netloc.decode('ascii')}{url.path}"  # never the query: it may hold a key
        status = self._post(url, addresses, content, shown)
        if 200 <= status < 300:
            return f"webhook:{shown} ({status})"
        if status == 410:
            raise PermanentDeliveryError(f"webhook {shown} answered 410 Gone: the receiver wants no more")
        redirect = " (redirects are not followed)" if 300 <= status < 400 else ""
        raise TransientDeliveryError(f"webhook {shown} answered {status}{redirect}")

    def _post(self, url: httpx.URL, addresses: list[ssrf.Address], content: bytes, shown: str) -> int:
        """POST to the first address that takes the connection (the name is not resolved again); the status
        of the answer, whose body is never read."""
        timestamp = int(time.time())
        headers = {"Host": url.netloc.decode("ascii"), "Content-Type": "application/json",
                   "User-Agent": "gateway-webhooks/1", EVENT_HEADER: json.loads(content)["id"],
                   SIGNATURE_HEADER: signature(self.subscription.secret, content, timestamp)}
        # TLS is checked against the URL's host name, not the address connected to
        extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}

        def post(client: httpx.Client, address: ssrf.Address) -> int:
            with client.stream("POST", url.copy_with(host=str(address)), content=content, headers=headers,
                               extensions=extensions) as response:
                return response.status_code

        try:
            with httpx.Client(timeout=self.settings.timeout, follow_redirects=False, trust_env=False) as client:
                for address in addresses[:-1]:
                    try:
                        return post(client, address)
                    except httpx.ConnectError:
                        continue  # the host's next address
                return post(client, addresses[-1])
        except httpx.ConnectError as exc:
            raise TransientDeliveryError(f"webhook {shown} unreachable: {exc}") from exc
        except httpx.HTTPError as exc:
            raise TransientDeliveryError(f"webhook {shown} failed: {type(exc).__name__}: {exc}") from exc
