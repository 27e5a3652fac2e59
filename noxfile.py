"""Sessions: tests, lint, typecheck, bench, chaos. ``nox -s tests`` is what CI runs."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite: unit, contract, integration (real processes) and browser."""
    session.install("-e", ".[dev]")
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (its checks and its format) over the package, devkit, tests, examples, benchmarks
    and the chaos suites; the import contracts between the package's rooms and the dev
    packages (pyproject.toml, docs/architecture.md)."""
    # pinned: a new release's rules must not fail CI by surprise
    session.install("ruff==0.17.*", "import-linter==2.17.*")
    places = ("atmosphere", "devkit", "tests", "examples", "bench", "chaos", "noxfile.py")
    session.run("ruff", "check", *places)
    session.run("ruff", "format", "--check", *places)
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, devkit, bench, chaos and the tests (pyproject.toml files)."""
    session.install("-e", ".[dev]", "mypy==2.4.*")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: ``nox -s bench`` runs every part; ``nox -s bench -- db`` one part."""
    session.install("-e", ".[dev,bench]")
    session.run("python", "-m", "bench", *session.posargs)


@nox.session
def chaos(session: nox.Session) -> None:
    """The reliability suites (docs/reliability.md): ``nox -s chaos`` runs ``run`` for 5
    minutes, ``soak`` for 10 and ``backlog`` at 100,000 jobs; ``nox -s chaos -- run --minutes
    2`` runs one. Tables print; JSON goes to chaos-output/."""
    session.install("-e", ".[dev]")
    suites = (
        [session.posargs]
        if session.posargs
        else [
            ["run", "--minutes", "5"],
            ["soak", "--minutes", "10"],
            ["backlog", "--jobs", "100000"],
        ]
    )
    for args in suites:
        session.run("python", "-m", "chaos", *args)
