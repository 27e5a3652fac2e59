"""The RTDB value model as the rest of the package uses it: paths, a stored tree rendered as a
read returns it, and Firebase's query order.

The code lives in ``_tree.py`` and ``_order.py``, which only ``atmosphere.db`` imports (an
import contract in ``nox -s lint``): they change with the client, and this module is what the
station, the dispatcher and ``MemoryDatabase`` may rely on.
"""

from __future__ import annotations

from ._order import key_order as key_order
from ._order import select as select
from ._tree import Segments as Segments
from ._tree import check_path as check_path
from ._tree import get_in as get_in
from ._tree import join_path as join_path
from ._tree import normalise as normalise
from ._tree import render as render
from ._tree import resolve_server_values as resolve_server_values
from ._tree import set_in as set_in
from ._tree import shallow as shallow
from ._tree import split_path as split_path

__all__ = [
    "Segments",
    "check_path",
    "get_in",
    "join_path",
    "key_order",
    "normalise",
    "render",
    "resolve_server_values",
    "select",
    "set_in",
    "shallow",
    "split_path",
]
