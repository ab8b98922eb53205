"""Let a `replace` resource say its data has not changed since the last load, so its table keeps its rows.

dlt truncates the table of a `replace` resource that yields nothing: an empty answer means "the data is now empty".
A generator that asks its API with a conditional GET (`If-None-Match` / `If-Modified-Since`) and gets `304 Not
Modified` means something else: nothing changed, load nothing, keep the table. It calls `mark_unchanged()` and
returns without yielding.

Keep the validators (`ETag`, `Last-Modified`) in `dlt.current.source_state()`, not in `resource_state()`: dlt resets
the state of a `replace` resource at the start of every extract (`dlt.extract.extract.Extract.extract`).
"""

import dlt

__all__ = ["mark_unchanged"]


def mark_unchanged() -> None:
    """Call from a resource's generator, then return without yielding: this run loads nothing for the resource and
    its table keeps the rows of the last load (for `replace`; other dispositions keep them anyway).

    Only this run's resource object changes: dlt truncates the tables of resources marked `replace` that yielded no
    data (`dlt.extract.extract.Extract._handle_empty_tables`), so the resource is marked `append` for the rest of
    the run. The stored schema keeps `replace`, and the next run builds the resource from sources.yaml again.

    Example:
        >>> state = dlt.current.source_state().setdefault("downloads", {})
        >>> response = session.get(url, headers={"If-None-Match": state.get("etag", "")}, stream=True)
        >>> if response.status_code == 304:
        ...     mark_unchanged()
        ...     return
    """
    resource = dlt.current.source().resources[dlt.current.resource_name()]
    if resource.write_disposition == "replace" or (isinstance(resource.write_disposition, dict) and
                                                   resource.write_disposition.get("disposition") == "replace"):
        resource.apply_hints(write_disposition="append")
