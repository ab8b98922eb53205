"""Keep secrets out of everything foundation prints, logs, posts or leaves on disk.

Secrets are masked by value, then by pattern. The values are every secret dlt resolves in this process (config
injection, `dlt.secrets.get`, destination credentials: dlt logs each resolution, `capture_resolved_secrets` listens),
every value of a secrets provider (`.dlt/secrets.toml`) and every environment variable whose name says it is secret.
Patterns catch what looks like a secret although its value is unknown (`password=...`, `Bearer ...`, `?key=...`,
URL credentials).
"""

import contextlib
import functools
import io
import logging
import os
import re
import threading
import traceback
from typing import Any, Iterator, List, Set, Tuple

__all__ = ["MaskingStream", "capture_resolved_secrets", "install_log_masking", "is_secret_name", "known_secrets",
           "mask_secrets", "register_secret", "register_provider_secrets", "scrub"]

MASK = "***"
# Shorter values would mask ordinary words; a real secret is longer.
MIN_SECRET_LENGTH = 6
# Environment variables holding secrets, by name (dlt's layout: SOURCES__X__API_KEY, DESTINATION__X__CREDENTIALS__...).
SECRET_NAME = re.compile(r"(?i)(password|passwd|secret|token|api_?key|private_?key|passphrase|credentials|webhook"
                         r"|(?<![a-z])auth(?![a-z])|salt)")  # `..._AUTH`, not `authenticator`


def is_secret_name(name: str) -> bool:
    """A setting, credentials field or environment variable whose name says it holds a secret."""
    return bool(SECRET_NAME.search(name or ""))

# keys whose value follows them (`password=x`, `'token': 'x'`); not `credentials` or `auth`, which messages use as
# ordinary words ("missing credentials: host"), and a bare `key: value` only with a quoted value ("api_key: set" is
# prose). A secret dlt resolved is masked by its value anyway.
_KEYS = r"password|passwd|pwd|secret|client_secret|token|access_token|refresh_token|api[_-]?key|apikey" \
        r"|private[_-]?key|passphrase"
_VALUE = r"(?![.*]{3})([^\s,;'\"&}\]`]+)"  # not a placeholder such as `...`
_PATTERNS = [
    # password=x, token = x (query strings, env files, INI)
    (re.compile(rf"(?i)((?:{_KEYS})\s*=\s*['\"]?){_VALUE}"), r"\1" + MASK),
    # {'password': 'x'}, "api_key": "x" (dicts, JSON); password: 'x' (a quoted value after a bare key)
    (re.compile(rf"(?i)(['\"](?:{_KEYS})['\"]\s*:\s*['\"]?){_VALUE}"), r"\1" + MASK),
    (re.compile(rf"(?i)((?:{_KEYS})\s*:\s*['\"])([^'\"\s]+)"), r"\1" + MASK),
    # Authorization: Bearer <token> / Basic <b64>
    (re.compile(r"(?i)\b((?:bearer|basic|token)\s+)([A-Za-z0-9\-._~+/]{8,}=*)"), r"\1" + MASK),
    # ?key=... / &sig=... in URLs
    (re.compile(r"(?i)([?&](?:key|sig|signature|code)=)([^&\s'\"#]+)"), r"\1" + MASK),
    # scheme://user:password@host
    (re.compile(r"(://[^:/@\s]+:)([^@\s]+)(@)"), r"\1" + MASK + r"\3"),
]

_lock = threading.Lock()
_values: Set[str] = set()
_ordered: Tuple[str, ...] = ()  # longest first, so a secret containing another is replaced whole


def register_secret(value: Any) -> None:
    """Mask `value` (its text) wherever it appears from now on."""
    text = value if isinstance(value, str) else None if value is None or isinstance(value, (bool, int, float)) \
        else str(value)
    if not text or len(text) < MIN_SECRET_LENGTH or text in _values:
        return
    global _ordered
    with _lock:
        _values.add(text)
        _ordered = tuple(sorted(_values, key=len, reverse=True))  # a new tuple: readers never see it change


def known_secrets() -> List[str]:
    return list(_ordered)


def mask_secrets(text: str) -> str:
    """`text` with every known secret value, and everything that looks like a secret, replaced by `***`.

    Example:
        >>> mask_secrets("GET https://api.example.com/v1?key=abc123def&page=2 failed")
        'GET https://api.example.com/v1?key=***&page=2 failed'
    """
    if not text:
        return text
    _register_environment()
    for value in _ordered:
        if value in text:
            text = text.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_environment_seen: Set[str] = set()


def _register_environment() -> None:
    """Values of environment variables named like secrets (cheap: only new names are looked at)."""
    names = os.environ.keys() - _environment_seen
    for name in names:
        _environment_seen.add(name)
        if is_secret_name(name):
            register_secret(os.environ.get(name))


def register_provider_secrets() -> None:
    """Every value held by dlt's secret providers (e.g. `.dlt/secrets.toml`): all of them are secrets."""
    import dlt

    for provider in dlt.secrets.config_providers:
        if not getattr(provider, "supports_secrets", False) or provider.name == "Environment Variables":
            continue
        for value in _leaves(getattr(provider, "_config_doc", None) or {}):
            register_secret(value)


def _leaves(document: Any) -> Iterator[Any]:
    if isinstance(document, dict):
        for value in document.values():
            yield from _leaves(value)
    elif isinstance(document, (list, tuple)):
        for value in document:
            yield from _leaves(value)
    else:
        yield getattr(document, "unwrap", lambda: document)()


@contextlib.contextmanager
def capture_resolved_secrets() -> Iterator[None]:
    """While the block runs, every value dlt resolves for a secret hint (credentials, `dlt.secrets.value`,
    `dlt.secrets.get`) is registered for masking. dlt logs each resolution to its `TraceLogContext`; this installs a
    subclass of it that listens, keeping what dlt collected for its own trace."""
    from dlt.common.configuration.container import Container
    from dlt.common.configuration.utils import TraceLogContext

    container = Container()
    previous = container[TraceLogContext]
    listener = _listener_class()()
    listener.resolved_traces, listener.all_traces = previous.resolved_traces, previous.all_traces
    container[TraceLogContext] = listener
    register_provider_secrets()
    try:
        yield
    finally:
        container[TraceLogContext] = previous
        previous.resolved_traces, previous.all_traces = listener.resolved_traces, listener.all_traces


@functools.lru_cache(maxsize=1)
def _listener_class() -> type:
    from dlt.common.configuration.specs.base_configuration import is_secret_hint
    from dlt.common.configuration.utils import TraceLogContext

    class SecretListener(TraceLogContext):
        def log(self, trace: Any) -> None:
            if trace.value is not None and (is_secret_hint(trace.hint) or is_secret_name(trace.key)):
                for value in _leaves(trace.value):
                    register_secret(value)
            super().log(trace)

    return SecretListener


# --- logs and streams ------------------------------------------------------------------------------------------

_factory_installed = False


def install_log_masking() -> None:
    """Mask every log record of every logger (dlt's, dagster's, the user's) when it is created: message, arguments
    and the formatted exception. Idempotent."""
    global _factory_installed
    if _factory_installed:
        return
    original = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = original(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return record
        record.msg, record.args = mask_secrets(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_secrets("".join(traceback.format_exception(*record.exc_info)).rstrip())
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


class MaskingStream(io.TextIOBase):
    """A text stream that masks secrets in what is written to it (the CLI wraps stdout and stderr in it)."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(mask_secrets(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


# --- what dlt persists -----------------------------------------------------------------------------------------

def scrub(value: Any, depth: int = 0) -> Any:
    """`value` with secrets masked in every string it holds; containers (dicts, lists, tuples, named tuples such as
    dlt's pipeline trace) are rebuilt only when something in them changed, so the result `is value` when clean."""
    if depth > 30:
        return value
    if isinstance(value, str):
        masked = mask_secrets(value)
        return value if masked == value else masked
    if isinstance(value, dict):
        items = {key: scrub(item, depth + 1) for key, item in value.items()}
        return value if all(items[key] is item for key, item in value.items()) else items
    if isinstance(value, (list, tuple)):
        items = [scrub(item, depth + 1) for item in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        if isinstance(value, list):
            return items
        return type(value)._make(items) if hasattr(value, "_fields") else tuple(items)
    return value
