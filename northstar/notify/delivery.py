"""Deliver alerts through Apprise URLs and Prefect notification blocks, with retries.

A channel (config `channels`) names environment variables holding Apprise URLs (they carry
tokens, so never in the TOML) and/or Prefect notification block names (`slug/name`). Each
target is tried up to 1 + retries times; every outcome becomes a `Delivery` record, and nothing
here raises: a failing channel never fails the snapshot. Records name a target by its variable
and Apprise's privacy-masked URL, so no token reaches the store or the logs.

Message per target: Apprise plugins whose format is HTML (email) get the HTML body; the
`blockkit://` (http) and `blockkits://` (https) schemes registered here POST the Slack Block
Kit payload as JSON to the URL's host and path (e.g. `blockkits://hooks.slack.com/services/T/B/X`
for a Slack incoming webhook); every other target gets the plain text.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import apprise
import httpx
from apprise.decorators import notify as apprise_notify
from apprise.manager_plugins import NotificationManager
from apprise.utils.parse import parse_urls

from northstar.config import NotificationTarget
from northstar.notify.message import Alert, render_email_html, render_slack, render_text, title

BLOCKKIT_SCHEMES = {"blockkit": "http", "blockkits": "https"}
BLOCKKIT_TIMEOUT_SECONDS = 10.0
APPRISE_LOGGER = logging.getLogger("apprise")


@dataclass(frozen=True)
class Delivery:
    """The outcome of sending one alert to one target."""

    channel: str
    target: str
    ok: bool
    attempts: int
    error: str | None = None
    skipped: bool = False

    def as_record(self) -> dict[str, Any]:
        """The delivery as JSON-ready data for the alerts table."""
        return asdict(self)


def _post_blockkit(scheme: str, body: str, meta: Mapping[str, Any]) -> bool:
    """POST a Block Kit JSON body to the URL of an Apprise custom-schema meta."""
    port = f":{meta['port']}" if meta.get("port") else ""
    query = meta.get("qsd") or {}
    url = f"{scheme}://{meta['host']}{port}{meta.get('fullpath') or '/'}"
    try:
        response = httpx.post(
            url,
            content=body.encode(),
            params=dict(query),
            headers={"Content-Type": "application/json"},
            timeout=BLOCKKIT_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as error:
        APPRISE_LOGGER.warning("Block Kit webhook %s failed: %s", meta["host"], error)
        return False
    if response.is_success:
        return True
    APPRISE_LOGGER.warning(
        "Block Kit webhook %s answered HTTP %s", meta["host"], response.status_code
    )
    return False


def _blockkit_sender(scheme: str) -> Callable[..., bool]:
    """The Apprise custom-notify function for one transport scheme."""

    def send(
        body: str, title: str, notify_type: str, meta: dict[str, Any], *_: Any, **__: Any
    ) -> bool:
        return _post_blockkit(scheme, body, meta)

    return send


def register_blockkit() -> None:
    """Register the blockkit:// and blockkits:// Apprise schemes (once per process)."""
    for schema, transport in BLOCKKIT_SCHEMES.items():
        if schema not in NotificationManager():
            apprise_notify(on=schema, name=f"Slack Block Kit webhook ({transport})")(
                _blockkit_sender(transport)
            )


register_blockkit()


def split_urls(value: str) -> list[str]:
    """The Apprise URLs in one environment variable (separated by spaces or commas)."""
    return [str(url) for url in parse_urls(value)]


def _where(url: str) -> str:
    """scheme://host[:port] of a target: paths and queries can carry tokens (a Slack webhook's
    path is its secret), so records and logs name a target by where it goes, no further."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _scheme(url: str) -> str:
    """The lower-case scheme of a URL."""
    return url.split("://", 1)[0].lower()


def _message_for(url: str, server: Any, alert: Alert) -> dict[str, Any]:
    """Apprise notify() arguments for one target: Block Kit, HTML or plain text."""
    if _scheme(url) in BLOCKKIT_SCHEMES:
        return {
            "body": json.dumps(render_slack(alert)),
            "title": "",
            "body_format": apprise.NotifyFormat.TEXT,
        }
    if server.notify_format == apprise.NotifyFormat.HTML:
        return {
            "body": render_email_html(alert),
            "title": title(alert),
            "body_format": apprise.NotifyFormat.HTML,
        }
    return {
        "body": render_text(alert),
        "title": title(alert),
        "body_format": apprise.NotifyFormat.TEXT,
    }


def _notify_type(alert: Alert) -> apprise.NotifyType:
    """Apprise's colour/icon type: failure when firing, success when resolved."""
    return apprise.NotifyType.FAILURE if alert.state == "firing" else apprise.NotifyType.SUCCESS


def _last_problem(log: str) -> str:
    """The last warning or error line Apprise logged, or a generic message."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return lines[-1] if lines else "the notification service reported a failure"


def with_retries(
    send: Callable[[], None], *, retries: int, retry_delay: float, sleep: Callable[[float], None]
) -> tuple[bool, int, str | None]:
    """Call `send` until it returns without raising, at most 1 + retries times.

    Returns (ok, attempts, last error). The wait before attempt n+1 is retry_delay x n.
    """
    error: str | None = None
    for attempt in range(1, retries + 2):
        try:
            send()
        except Exception as failure:
            error = f"{type(failure).__name__}: {failure}"
        else:
            return True, attempt, None
        if attempt <= retries:
            sleep(retry_delay * attempt)
    return False, retries + 1, error


class DeliveryFailed(RuntimeError):
    """A target reported a failed send."""


def _apprise_send(
    server: Any, arguments: Mapping[str, Any], notify_type: apprise.NotifyType
) -> None:
    """One Apprise send; raises DeliveryFailed with Apprise's own reason on failure."""
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        ok = server.notify(notify_type=notify_type, **arguments)
    if not ok:
        raise DeliveryFailed(_last_problem(captured.getvalue()))


def deliver_apprise(
    alert: Alert,
    channel: str,
    env_name: str,
    *,
    environ: Mapping[str, str],
    retries: int,
    retry_delay: float,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """Send the alert to every Apprise URL held by one environment variable."""
    value = environ.get(env_name, "").strip()
    if not value:
        return [
            Delivery(
                channel,
                env_name,
                ok=False,
                attempts=0,
                skipped=True,
                error=f"environment variable {env_name} is not set",
            )
        ]
    results = []
    for index, url in enumerate(split_urls(value)):
        label = f"{env_name}[{index}]"
        server = apprise.Apprise.instantiate(url)
        if server is None:
            results.append(
                Delivery(channel, label, ok=False, attempts=0, error="not a valid Apprise URL")
            )
            continue
        label = f"{label} {_where(server.url(privacy=True))}"
        arguments = _message_for(url, server, alert)
        ok, attempts, error = with_retries(
            partial(_apprise_send, server, arguments, _notify_type(alert)),
            retries=retries,
            retry_delay=retry_delay,
            sleep=sleep,
        )
        results.append(Delivery(channel, label, ok=ok, attempts=attempts, error=error))
    return results


def _block_send(name: str, alert: Alert) -> None:
    """Load a Prefect notification block by `slug/name` and send the plain-text message."""
    from prefect.blocks.abstract import NotificationBlock
    from prefect.blocks.core import Block

    loaded = Block.load(name)
    if not isinstance(loaded, NotificationBlock):
        raise DeliveryFailed(f"block {name!r} is not a notification block")
    block: Any = loaded  # notify() runs synchronously in a sync context (async_dispatch)
    with block.raise_on_failure():
        block.notify(body=render_text(alert), subject=title(alert))


def deliver_block(
    alert: Alert,
    channel: str,
    name: str,
    *,
    retries: int,
    retry_delay: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """Send the alert through one Prefect notification block."""
    ok, attempts, error = with_retries(
        lambda: _block_send(name, alert), retries=retries, retry_delay=retry_delay, sleep=sleep
    )
    return Delivery(channel, f"prefect-block {name}", ok=ok, attempts=attempts, error=error)


def deliver(
    alert: Alert,
    channels: Mapping[str, NotificationTarget],
    *,
    environ: Mapping[str, str] | None = None,
    retries: int = 2,
    retry_delay: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """Send one alert to every target of every channel its rule names; never raises."""
    env = os.environ if environ is None else environ
    results: list[Delivery] = []
    for channel in alert.channels:
        target = channels.get(channel)
        if target is None:
            results.append(
                Delivery(
                    channel, channel, ok=False, attempts=0, error=f"unknown channel {channel!r}"
                )
            )
            continue
        for env_name in target.url_env:
            results += deliver_apprise(
                alert,
                channel,
                env_name,
                environ=env,
                retries=retries,
                retry_delay=retry_delay,
                sleep=sleep,
            )
        for block in target.prefect_blocks:
            results.append(
                deliver_block(
                    alert, channel, block, retries=retries, retry_delay=retry_delay, sleep=sleep
                )
            )
    return results


def delivery_status(deliveries: Sequence[Delivery]) -> str:
    """Overall outcome: sent, partial, failed, or unconfigured when no target was attempted."""
    attempted = [d for d in deliveries if not d.skipped]
    if not attempted:
        return "unconfigured"
    sent = sum(d.ok for d in attempted)
    if sent == len(attempted):
        return "sent"
    return "partial" if sent else "failed"
