"""The RTDB value model as the rest of the package uses it: paths, a stored tree rendered as a
read returns it, and Firebase's query order.

The semantics live in ``atmosphere.rtdb`` (shared with the embedded server); this module adds
the client's refusals (``RequestRefused``) and its query arguments, from ``_tree.py`` and
``_order.py``, which only ``atmosphere.db`` imports (an import contract in ``nox -s lint``).
"""

from __future__ import annotations

from atmosphere.rtdb.keys import Segments as Segments
from atmosphere.rtdb.keys import join_path as join_path
from atmosphere.rtdb.keys import split_path as split_path
from atmosphere.rtdb.order import key_order as key_order
from atmosphere.rtdb.tree import get as get_in
from atmosphere.rtdb.tree import render as render
from atmosphere.rtdb.tree import set_one as set_in
from atmosphere.rtdb.tree import shallow as shallow

from ._order import select as select
from ._tree import check_path as check_path
from ._tree import normalise as normalise
from ._tree import resolve_server_values as resolve_server_values

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
