"""Local replica of the public Jaffle Shop API (stdlib only), for tests and benchmarks.

``JaffleReplica`` serves the vendored dataset (``data/``, see ``data/PROVENANCE.md``) on
127.0.0.1 with the same paths, pagination (``Link: <...>; rel="next"``), filters and JSON shapes
as https://jaffle-shop.dlthub.com/api/v1, plus test controls (added days, latency, faults).
"""

from .dataset import Dataset, load_dataset
from .server import Fault, JaffleReplica, serve

__all__ = ["Dataset", "Fault", "JaffleReplica", "load_dataset", "serve"]
