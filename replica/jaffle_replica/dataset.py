"""The vendored Jaffle Shop dataset, loaded once per process (and per ``scale``).

The CSVs live xz-compressed next to this module (``data/raw_*.csv.xz``, CRLF line ends; see
``data/PROVENANCE.md``).  Every row is serialised to compact JSON bytes once at load time, exactly
as the public Jaffle Shop API (FastAPI) renders it, so the server only has to join byte strings:

* money and rates (``subtotal``, ``tax_paid``, ``order_total``, ``price``, ``cost``, ``tax_rate``)
  are JSON strings, ``perishable`` is a JSON boolean, timestamps are the CSV text (no timezone);
* each order embeds its ``items`` (``{"id", "order_id", "sku"}``), ``[]`` when it has none.

``scale=k`` repeats customers and orders (with their items) ``k`` times.  Copy 0 keeps the
original ids; copy ``c > 0`` gets ids ``uuid5(NAMESPACE, f"{c}:{original_id}")`` (the order's
``customer_id`` points at the customer copy of the same index).  Orders stay sorted by day: within
each day the served order is copy 0's orders (file order), then copy 1's, and so on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import lzma
import threading
import time
import uuid
from bisect import bisect_left, bisect_right
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources

__all__ = [
    "ENTITIES",
    "NAMESPACE",
    "Dataset",
    "SourceOrder",
    "load_dataset",
    "read_csv",
]

#: Namespace of every id the replica derives (scale copies, added days).
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://jaffle-shop.dlthub.com/replica")

#: Entities served as paginated lists under ``/api/v1/<entity>``, in ``/row-counts`` order.
ENTITIES = ("customers", "orders", "items", "products", "stores", "supplies")

_FILES = {
    "customers": "raw_customers.csv.xz",
    "orders": "raw_orders.csv.xz",
    "items": "raw_items.csv.xz",
    "products": "raw_products.csv.xz",
    "stores": "raw_stores.csv.xz",
    "supplies": "raw_supplies.csv.xz",
}

_ORDER_FMT = (
    '{"id":"%s","customer_id":"%s","store_id":"%s","ordered_at":"%s",'
    '"subtotal":"%s","tax_paid":"%s","order_total":"%s","items":[%s]}'
)
# bytes that need no JSON escaping (printable ASCII but '"' and '\\'), plus the line ends
_PLAIN = bytes(b for b in range(0x20, 0x7F) if b not in b'"\\') + b"\r\n"
_ITEM_FMT = '{"id":"%s","order_id":"%s","sku":"%s"}'


@dataclass(frozen=True, slots=True)
class SourceOrder:
    """Raw fields of an order (used as the template of the days added by ``add_day``)."""

    id: str
    customer_id: str
    ordered_at: str
    store_id: str
    subtotal: str
    tax_paid: str
    order_total: str
    items: tuple[tuple[str, str], ...]  # (item_id, sku)


@dataclass(eq=False)
class Dataset:
    """Immutable, pre-serialised rows of every entity (treat all lists as read-only)."""

    scale: int
    rows: dict[str, list[bytes]]
    #: Distinct ``YYYY-MM-DD`` days of the orders, ascending.
    order_days: list[str]
    #: ``order_days[i]``'s orders are ``rows["orders"][day_starts[i]:day_starts[i + 1]]``.
    day_starts: list[int]
    #: The orders of the first day (template of ``add_day``).
    first_day: list[SourceOrder]
    load_seconds: float = 0.0
    _indexes: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def counts(self) -> dict[str, int]:
        return {name: len(self.rows[name]) for name in ENTITIES}

    def index(self, entity: str) -> dict[str, int]:
        """``key -> row position`` (key: ``sku`` for products, ``id`` otherwise; first wins).

        Built lazily on first use and cached.
        """
        idx = self._indexes.get(entity)
        if idx is None:
            with self._lock:
                idx = self._indexes.get(entity)
                if idx is None:
                    idx = {}
                    for pos, row in enumerate(self.rows[entity]):
                        idx.setdefault(row_key(row), pos)
                    self._indexes[entity] = idx
        return idx

    def get(self, entity: str, key: str) -> bytes | None:
        pos = self.index(entity).get(key)
        return None if pos is None else self.rows[entity][pos]

    def order_range(self, start: str | None, end: str | None) -> tuple[int, int]:
        """``[lo, hi)`` of the orders whose day is within ``start..end`` (inclusive, ISO dates)."""
        return day_range(self.order_days, self.day_starts, start, end)


def day_range(
    days: list[str], starts: list[int], start: str | None, end: str | None
) -> tuple[int, int]:
    lo = starts[bisect_left(days, start)] if start else 0
    hi = starts[bisect_right(days, end)] if end else starts[-1]
    return lo, max(lo, hi)


def row_key(row: bytes) -> str:
    """Value of the first field of a pre-serialised row (``{"id":"..."`` / ``{"sku":"..."``)."""
    start = row.index(b':"') + 2
    end = row.index(b'"', start)
    return row[start:end].decode()


def _raw(name: str) -> bytes:
    fname = _FILES.get(name, name)
    return lzma.decompress(resources.files(__package__).joinpath("data", fname).read_bytes())


def parse_csv(raw: bytes) -> tuple[list[str], list[list[str]], bool]:
    """Header, rows and whether the values can be emitted into JSON without escaping."""
    if not raw.translate(None, _PLAIN):
        # plain ASCII without quotes or backslashes: a plain split is exact (~2x faster than the
        # csv module) and the values can be put into JSON strings as they are
        text = raw.decode("ascii")
        lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
        rows = [line.split(",") for line in lines if line]
        header = rows.pop(0) if rows else []
        return header, rows, True
    text = raw.decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    return header, [r for r in reader if r], False


def read_csv(name: str) -> tuple[list[str], list[list[str]], bool]:
    """Header, rows and whether the file can be emitted without JSON escaping, of a vendored CSV.

    ``name`` is an entity (``"orders"``) or a file name (``"raw_orders.csv.xz"``).
    """
    return parse_csv(_raw(name))


_NS_SHA1 = hashlib.sha1(NAMESPACE.bytes)


def fast_uuid5(name: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, name))``, about 5x faster."""
    h = _NS_SHA1.copy()
    h.update(name.encode())
    b = bytearray(h.digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50
    b[8] = (b[8] & 0x3F) | 0x80
    x = b.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _js(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _dict_rows(raw: bytes, convert: dict[str, object]) -> list[bytes]:
    header, rows, _ = parse_csv(raw)
    out = []
    for r in rows:
        obj = {}
        for col, val in zip(header, r):
            conv = convert.get(col)
            obj[col] = conv(val) if conv else val
        out.append(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode())
    return out


def _bool(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "t", "yes")


def _load(scale: int) -> Dataset:
    t0 = time.perf_counter()
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
        raise ValueError(f"scale must be an int >= 1, got {scale!r}")

    # lzma releases the GIL: decompress the big files concurrently
    with ThreadPoolExecutor(max_workers=3) as pool:
        raw = dict(zip(ENTITIES, pool.map(_raw, ENTITIES)))

    def copy_id(c: int, original: str) -> str:
        return original if c == 0 else fast_uuid5(f"{c}:{original}")

    # customers: copy 0 (file order), then copy 1, ...
    _, cust, cust_safe = parse_csv(raw.pop("customers"))
    customers: list[bytes] = []
    for c in range(scale):
        if cust_safe:
            fmt = '{"id":"%s","name":"%s"}'
            customers.extend((fmt % (copy_id(c, i), n)).encode() for i, n in cust)
        else:
            customers.extend(
                ('{"id":%s,"name":%s}' % (_js(copy_id(c, i)), _js(n))).encode("utf-8")
                for i, n in cust
            )

    # items grouped by order (the file is in order position; grouping does not rely on it)
    items_header, item_rows, items_safe = parse_csv(raw.pop("items"))
    if items_header != ["id", "order_id", "sku"]:
        raise ValueError(f"unexpected raw_items.csv header {items_header}")
    by_order: dict[str, list[tuple[str, str]]] = {}
    for iid, oid, sku in item_rows:
        lst = by_order.get(oid)
        if lst is None:
            by_order[oid] = [(iid, sku)]
        else:
            lst.append((iid, sku))
    del item_rows

    orders_header, order_rows, orders_safe = parse_csv(raw.pop("orders"))
    if orders_header != [
        "id", "customer_id", "ordered_at", "store_id", "subtotal", "tax_paid", "order_total"
    ]:
        raise ValueError(f"unexpected raw_orders.csv header {orders_header}")
    safe = orders_safe and items_safe

    # group orders by day, keeping file order; the file must be sorted by day
    days: list[str] = []
    groups: list[list[list[str]]] = []
    for r in order_rows:
        day = r[2][:10]
        if not days or days[-1] != day:
            if days and day < days[-1]:
                raise ValueError("raw_orders.csv is not sorted by ordered_at date")
            days.append(day)
            groups.append([])
        groups[-1].append(r)
    del order_rows

    orders: list[bytes] = []
    items: list[bytes] = []
    starts: list[int] = [0]
    first_day: list[SourceOrder] = []
    items_extend, orders_append = items.extend, orders.append
    item_fmt, order_fmt = _ITEM_FMT, _ORDER_FMT
    for gi, group in enumerate(groups):
        for c in range(scale):
            for r in group:
                oid, cid, at, sid, sub, tax, tot = r
                its = by_order.get(oid, ())
                if c:
                    oid, cid = copy_id(c, oid), copy_id(c, cid)
                    its = [(copy_id(c, iid), sku) for iid, sku in its]
                if gi == 0:
                    first_day.append(SourceOrder(oid, cid, at, sid, sub, tax, tot, tuple(its)))
                if safe:  # inlined _serialise (the hot path)
                    item_strs = [item_fmt % (iid, oid, sku) for iid, sku in its]
                    items_extend([s.encode() for s in item_strs])
                    orders_append(
                        (
                            order_fmt
                            % (oid, cid, sid, at, sub, tax, tot, ",".join(item_strs))
                        ).encode()
                    )
                else:
                    o_json, i_json = _serialise(oid, cid, at, sid, sub, tax, tot, its)
                    items_extend(i_json)
                    orders_append(o_json)
        starts.append(len(orders))

    products = _dict_rows(raw.pop("products"), {})
    stores = _dict_rows(raw.pop("stores"), {})
    supplies = _dict_rows(raw.pop("supplies"), {"perishable": _bool})

    return Dataset(
        scale=scale,
        rows={
            "customers": customers,
            "orders": orders,
            "items": items,
            "products": products,
            "stores": stores,
            "supplies": supplies,
        },
        order_days=days,
        day_starts=starts,
        first_day=first_day,
        load_seconds=time.perf_counter() - t0,
    )


def _serialise(
    oid: str,
    cid: str,
    at: str,
    sid: str,
    sub: str,
    tax: str,
    tot: str,
    its,
    safe: bool = False,
) -> tuple[bytes, list[bytes]]:
    """JSON bytes of an order (with embedded items) and of each of its items."""
    if not safe:
        e = lambda s: _js(s)[1:-1]  # noqa: E731
        oid, cid, at, sid, sub, tax, tot = map(e, (oid, cid, at, sid, sub, tax, tot))
        its = [(e(i), e(k)) for i, k in its]
    item_strs = [_ITEM_FMT % (iid, oid, sku) for iid, sku in its]
    o = _ORDER_FMT % (oid, cid, sid, at, sub, tax, tot, ",".join(item_strs))
    return o.encode("utf-8"), [s.encode("utf-8") for s in item_strs]


_CACHE: dict[int, Dataset] = {}
_CACHE_LOCK = threading.Lock()


def load_dataset(scale: int = 1) -> Dataset:
    """The dataset at ``scale`` (loaded once per process and scale, then cached)."""
    ds = _CACHE.get(scale)
    if ds is None:
        with _CACHE_LOCK:
            ds = _CACHE.get(scale)
            if ds is None:
                ds = _CACHE[scale] = _load(scale)
    return ds
