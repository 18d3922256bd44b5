"""A polite HTTP client for the live sources: retries with backoff, ``Retry-After``, pacing.

Every live source fetches through one :class:`PoliteHttpClient`, which wraps an
``httpx.Client`` (injectable, so tests pass one built on ``httpx.MockTransport``) and adds:

- retries (tenacity) on connection errors, timeouts, HTTP 5xx and HTTP 429, with exponential
  backoff plus jitter, up to a bounded number of attempts;
- ``Retry-After`` on a 429 or 503 honoured exactly (seconds or an HTTP date), unless the
  server asks for more than ``max_retry_after_seconds``: then the client gives up at once
  rather than hammer a server that said "not now";
- a minimum interval between two requests to the same host, so pagination is gentle.

Waiting goes through the injected ``sleep`` and ``monotonic`` functions: tests record the
waits instead of sleeping. A failure that survives the retries becomes a
:class:`SourceUnavailableError` whose message is one line a user can act on, e.g.
``coinbase candles: cannot connect to api.exchange.coinbase.com (connection refused) after
4 attempts``.

Error types (all :class:`~btcmlops.errors.DependencyUnavailableError`: a live source that
cannot deliver is an unavailable dependency, not a mistake in the caller's input; the CLI
exits 1, an API would answer 503):

- :class:`SourceError`: base class; ``source`` names the source, ``str(error)`` is the line.
- :class:`SourceUnavailableError`: the service could not be reached or kept failing.
- :class:`SourcePayloadError`: the service answered, but not with what the source expects.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from btcmlops import __version__
from btcmlops.clock import Clock, ensure_utc
from btcmlops.errors import DependencyUnavailableError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_ATTEMPTS = 4
# Coinbase documents 3 requests/s for public endpoints (bursts to 6); feeds deserve no less.
DEFAULT_MIN_INTERVAL_SECONDS = 0.34
DEFAULT_BACKOFF_INITIAL_SECONDS = 1.0
DEFAULT_BACKOFF_MAX_SECONDS = 30.0
DEFAULT_BACKOFF_JITTER_SECONDS = 1.0
DEFAULT_MAX_RETRY_AFTER_SECONDS = 60.0
USER_AGENT = f"btcmlops/{__version__} (+https://github.com/btcmlops/btcmlops)"

_RETRYABLE_TRANSPORT_ERRORS = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


class SourceError(DependencyUnavailableError):
    """A live source could not deliver. ``str(error)`` is ``"<source>: <what failed>"``."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


class SourceUnavailableError(SourceError):
    """The service could not be reached, or kept failing after every retry."""


class SourcePayloadError(SourceError):
    """The service answered with something other than what the source expects."""


class _RetryableStatus(Exception):
    """An HTTP answer worth retrying (429 or 5xx); carries the response for ``Retry-After``."""

    def __init__(self, response: httpx.Response, retry_after: float | None) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = retry_after


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, (_RetryableStatus, *_RETRYABLE_TRANSPORT_ERRORS))


class _RetryAfterOrBackoff(wait_base):
    """Wait what the server asked for, else ``initial * 2**(n-1)`` (capped) plus jitter.

    Written here rather than taken from tenacity's ``wait_exponential_jitter`` because that
    draws its jitter from the global ``random`` module, and waits must be reproducible from
    an explicit seed in tests.
    """

    def __init__(self, initial: float, maximum: float, jitter: float, rng: random.Random) -> None:
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
        self.rng = rng

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, _RetryableStatus) and error.retry_after is not None:
            return error.retry_after
        backoff = self.initial * 2 ** (retry_state.attempt_number - 1)
        return min(backoff, self.maximum) + self.rng.uniform(0.0, self.jitter)


class _RetryAfterTooLong(stop_base):
    """Stop when the server asks for a longer pause than this client is willing to take."""

    def __init__(self, limit: float) -> None:
        self.limit = limit

    def __call__(self, retry_state: RetryCallState) -> bool:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        return (
            isinstance(error, _RetryableStatus)
            and error.retry_after is not None
            and error.retry_after > self.limit
        )


class PoliteHttpClient:
    """GET with retries, backoff with jitter, ``Retry-After`` and a per-host request interval.

    Parameters
    ----------
    clock:
        Used only to turn an HTTP-date ``Retry-After`` into a delay.
    client:
        The ``httpx.Client`` to send through; one is created (and closed by :meth:`close`)
        when omitted.
    attempts:
        Total tries per request, the first included.
    min_interval_seconds:
        Least time between the starts of two requests to the same host.
    sleep, monotonic:
        How to wait and how to measure elapsed time (``time.sleep``/``time.monotonic``);
        tests pass fakes.
    jitter_seed:
        Seed for the backoff jitter (``None``: unseeded, which is what production wants,
        so that clients retrying together drift apart).
    """

    def __init__(
        self,
        clock: Clock,
        client: httpx.Client | None = None,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        attempts: int = DEFAULT_ATTEMPTS,
        min_interval_seconds: float = DEFAULT_MIN_INTERVAL_SECONDS,
        backoff_initial_seconds: float = DEFAULT_BACKOFF_INITIAL_SECONDS,
        backoff_max_seconds: float = DEFAULT_BACKOFF_MAX_SECONDS,
        backoff_jitter_seconds: float = DEFAULT_BACKOFF_JITTER_SECONDS,
        max_retry_after_seconds: float = DEFAULT_MAX_RETRY_AFTER_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        jitter_seed: int | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        if min_interval_seconds < 0:
            raise ValueError(f"min_interval_seconds must be >= 0, got {min_interval_seconds}")
        self.clock = clock
        self._owns_client = client is None
        self.client = client or httpx.Client()
        self.timeout_seconds = timeout_seconds
        self.attempts = attempts
        self.min_interval_seconds = min_interval_seconds
        self.max_retry_after_seconds = max_retry_after_seconds
        self._wait = _RetryAfterOrBackoff(
            backoff_initial_seconds,
            backoff_max_seconds,
            backoff_jitter_seconds,
            random.Random(jitter_seed),
        )
        self._sleep = sleep
        self._monotonic = monotonic
        self._last_request_at: dict[str, float] = {}

    def get(
        self, url: str, *, source: str, params: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        """The successful (2xx/3xx-followed) response to ``GET url``.

        Raises
        ------
        SourceUnavailableError
            The service stayed unreachable or failing after every attempt, rate-limited us
            for longer than we wait, or refused the request (4xx other than 429).
        """
        host = httpx.URL(url).host
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts)
            | _RetryAfterTooLong(self.max_retry_after_seconds),
            wait=self._wait,
            retry=retry_if_exception(_is_retryable),
            sleep=self._sleep,
            before_sleep=lambda state: self._log_retry(source, host, state),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._send_once(url, host, source, params)
        except _RetryableStatus as error:
            tries = retrying.statistics.get("attempt_number", self.attempts)
            raise SourceUnavailableError(source, self._status_problem(error, host, tries)) from None
        except _RETRYABLE_TRANSPORT_ERRORS as error:
            tries = retrying.statistics.get("attempt_number", self.attempts)
            problem = (
                f"{_transport_problem(error, host, self.timeout_seconds)} after {tries} attempts"
            )
            raise SourceUnavailableError(source, problem) from None
        except httpx.HTTPError as error:  # not worth retrying: a bad URL, an unsupported scheme
            problem = f"request to {host or url} failed ({_reason(error)})"
            raise SourceUnavailableError(source, problem) from None
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def close(self) -> None:
        """Close the underlying client if this object created it."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> PoliteHttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- internals

    def _send_once(
        self, url: str, host: str, source: str, params: Mapping[str, Any] | None
    ) -> httpx.Response:
        self._pace(host)
        response = self.client.get(
            url,
            params=dict(params) if params else None,
            headers={"User-Agent": USER_AGENT},
            timeout=self.timeout_seconds,
            follow_redirects=True,
        )
        status = response.status_code
        if status == 429 or status >= 500:
            raise _RetryableStatus(response, _retry_after_seconds(response, self.clock.now()))
        if status >= 400:
            # A refusal (bad product id, gone feed) will not change on a retry.
            problem = f"HTTP {status} {response.reason_phrase} from {host}{_api_message(response)}"
            raise SourceUnavailableError(source, problem)
        return response

    def _pace(self, host: str) -> None:
        """Sleep until ``min_interval_seconds`` have passed since the last request to ``host``."""
        last = self._last_request_at.get(host)
        if last is not None:
            remaining = self.min_interval_seconds - (self._monotonic() - last)
            if remaining > 0:
                self._sleep(remaining)
        self._last_request_at[host] = self._monotonic()

    def _status_problem(self, error: _RetryableStatus, host: str, tries: int) -> str:
        response = error.response
        status = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
        detail = _api_message(response)
        if error.retry_after is not None and error.retry_after > self.max_retry_after_seconds:
            return (
                f"{status} from {host}{detail}; it asks to wait {error.retry_after:g} s, "
                f"longer than the {self.max_retry_after_seconds:g} s this client waits"
            )
        if response.status_code == 429:
            return f"rate limited by {host} ({status}{detail}) after {tries} attempts"
        return f"{status} from {host}{detail} after {tries} attempts"

    def _log_retry(self, source: str, host: str, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        what = str(error) if isinstance(error, _RetryableStatus) else _reason(error)
        delay = state.next_action.sleep if state.next_action else 0.0
        log.info(
            "%s: %s from %s, retrying in %.1f s (attempt %d of %d)",
            source,
            what,
            host,
            delay,
            state.attempt_number + 1,
            self.attempts,
        )


def _retry_after_seconds(response: httpx.Response, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now`` (delta-seconds or HTTP-date), or ``None``."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None  # unparseable: fall back to our own backoff
        seconds = (ensure_utc(moment) - now).total_seconds()
    return max(seconds, 0.0)


def _api_message(response: httpx.Response) -> str:
    """``": <message>"`` when the body is a JSON error object with a message, else ``""``."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]:
        return f": {body['message'][:200]}"
    return ""


_ERRNO_PREFIX = re.compile(r"^\[Errno -?\d+\]\s*")


def _reason(error: BaseException | None) -> str:
    """A short lower-case reason: ``[Errno 111] Connection refused`` -> ``connection refused``."""
    if error is None:
        return "unknown error"
    text = _ERRNO_PREFIX.sub("", str(error).strip().splitlines()[0] if str(error).strip() else "")
    if not text:
        return type(error).__name__
    return text[0].lower() + text[1:]


def _transport_problem(error: BaseException, host: str, timeout_seconds: float) -> str:
    if isinstance(error, httpx.ConnectTimeout):
        return f"cannot connect to {host} (no answer within {timeout_seconds:g} s)"
    if isinstance(error, httpx.TimeoutException):
        return f"{host} did not answer within {timeout_seconds:g} s"
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect to {host} ({_reason(error)})"
    return f"connection to {host} failed ({_reason(error)})"
