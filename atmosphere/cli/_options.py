"""Options several commands share, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

DbUrl = Annotated[
    str | None,
    typer.Option(
        "--db-url",
        envvar="ATMOSPHERE_DATABASE_URL",
        help="Database URL (default: the embedded server on this machine).",
    ),
]
Root = Annotated[str | None, typer.Option(help="The Atmosphere root key.")]
