"""Conditional GETs for `replace` resources: an unchanged file is neither downloaded nor loaded again, and its table
keeps its rows.

dlt truncates the table of a `replace` resource that yields nothing: an empty answer means "the data is now empty".
A generator whose conditional GET (`If-None-Match` / `If-Modified-Since`) is answered `304 Not Modified` means
something else: nothing changed, load nothing, keep the table. It calls `mark_unchanged()` and returns without
yielding.

The validators (`ETag`, `Last-Modified`) of the last complete download are kept per resource in the source state
(`dlt.current.source_state()`), not in `resource_state()`: dlt resets the state of a `replace` resource at the start
of every extract (`dlt.extract.extract.Extract.extract`). dlt commits the state with the load package of the rows, so
validators count only once their rows are loaded.

Example:
    >>> def export(url=dlt.config.value):
    ...     with session.get(url, headers=conditional_headers(url), stream=True) as response:
    ...         if response.status_code == 304:
    ...             mark_unchanged()
    ...             return
    ...         response.raise_for_status()
    ...         yield from pages_of(response)
    ...         remember_validators(url, response)
"""

from typing import Any, Dict

import dlt

__all__ = ["conditional_headers", "mark_unchanged", "remember_validators"]

STATE_KEY = "downloads"  # in the source state: {resource: {url, etag, last_modified}} of its last complete download


def conditional_headers(url: str) -> Dict[str, str]:
    """`If-None-Match` / `If-Modified-Since` from the current resource's last complete download of `url`; none for
    another URL, and none once its table is gone from the schema: a full refresh drops the table and the resource's
    state but not the source state, and must download again."""
    resource = dlt.current.resource_name()
    last = dlt.current.source_state().get(STATE_KEY, {}).get(resource)
    if not last or last.get("url") != url or resource not in dlt.current.source_schema().tables:
        return {}
    headers = {"If-None-Match": last.get("etag"), "If-Modified-Since": last.get("last_modified")}
    return {name: value for name, value in headers.items() if value}


def remember_validators(url: str, response: Any) -> None:
    """Keep `response`'s `ETag` / `Last-Modified` for the next run's `conditional_headers(url)`. Call it after the
    last row was yielded: a generator closed early (dlt's `add_limit`) ends its extract without an error, and dlt
    keeps the state of every extract that succeeded."""
    downloads = dlt.current.source_state().setdefault(STATE_KEY, {})
    downloads[dlt.current.resource_name()] = {"url": url, "etag": response.headers.get("ETag"),
                                              "last_modified": response.headers.get("Last-Modified")}


def mark_unchanged() -> None:
    """Call from a resource's generator, then return without yielding: this run loads nothing for the resource and
    its table keeps the rows of the last load (for `replace`; other dispositions keep them anyway).

    Only this run's resource object changes: dlt truncates the tables of resources marked `replace` that yielded no
    data (`dlt.extract.extract.Extract._handle_empty_tables`), so the resource is marked `append` for the rest of
    the run. The stored schema keeps `replace`, and the next run builds the resource from sources.yaml again.
    """
    resource = dlt.current.source().resources[dlt.current.resource_name()]
    if resource.write_disposition == "replace" or (isinstance(resource.write_disposition, dict) and
                                                   resource.write_disposition.get("disposition") == "replace"):
        resource.apply_hints(write_disposition="append")
