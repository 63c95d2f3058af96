"""Watch the cloud's spot-interruption notice and start the drain before the signal arrives.

AWS announces a spot interruption about two minutes ahead at `/latest/meta-data/spot/instance-action`
(404 until then; IMDSv2 token first, IMDSv1 if the token call fails); GCP sets
`/computeMetadata/v1/instance/preempted` to TRUE about 30 s ahead. The spec's `spot_notices` picks one;
GPUSERVE_SPOT_NOTICES overrides it and GPUSERVE_SPOT_NOTICE_URL points the watcher elsewhere (a proxy, a test).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

log = logging.getLogger("gpuserve")

URLS = {
    "aws": "http://169.254.169.254/latest/meta-data/spot/instance-action",
    "gcp": "http://metadata.google.internal/computeMetadata/v1/instance/preempted",
}
AWS_TOKEN_URL = "http://169.254.169.254/latest/api/token"
POLL_SECONDS = 5.0


def notice_given(kind: str, url: str, timeout: float = 2.0) -> bool:
    """Whether the metadata service announces this instance's interruption now."""
    headers = {"Metadata-Flavor": "Google"} if kind == "gcp" else {}
    if kind == "aws" and url == URLS["aws"]:
        headers |= _aws_token(timeout)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
            body = response.read().decode(errors="replace").strip()
    except (urllib.error.URLError, OSError):  # 404 (no notice), or no metadata service here
        return False
    return body.upper() == "TRUE" if kind == "gcp" else bool(body)


def _aws_token(timeout: float) -> dict[str, str]:
    request = urllib.request.Request(
        AWS_TOKEN_URL, method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return {"X-aws-ec2-metadata-token": response.read().decode()}
    except (urllib.error.URLError, OSError):
        return {}


def watch_for_spot_notice(on_notice: Callable[[str], None], kind: str | None = None) -> threading.Thread | None:
    """Poll in a daemon thread and call on_notice once when the interruption is announced. None when off."""
    kind = os.environ.get("GPUSERVE_SPOT_NOTICES", kind or "off")
    if kind == "off":
        return None
    if kind not in URLS:
        log.error("gpuserve: GPUSERVE_SPOT_NOTICES=%r is not one of off, %s; not watching", kind, ", ".join(URLS))
        return None
    url = os.environ.get("GPUSERVE_SPOT_NOTICE_URL", URLS[kind])
    poll = float(os.environ.get("GPUSERVE_SPOT_POLL_SECONDS", POLL_SECONDS))

    def watch() -> None:
        while not notice_given(kind, url):
            time.sleep(poll)
        log.warning("gpuserve: %s announced a spot interruption at %s", kind, url)
        on_notice(f"{kind} spot interruption notice")

    thread = threading.Thread(target=watch, name="gpuserve-spot-notice", daemon=True)
    thread.start()
    return thread
