"""Developer and CI entry points: ``nox -s tests``, ``lint``, ``docs``, ``stateful``.

Every session installs the project the same way, through :func:`install_project`.
Expensive sessions (``stateful``, ``docs``) are off by default.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True


def install_project(session: nox.Session, *extras: str) -> None:
    """Install modelcheck (editable) with the given extras into the session."""
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install("--upgrade", "pip")
    session.install("-e", spec)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the library's own tests (fast and slow) against embedded clusters.

    Two xdist workers, each with its own cluster on its own socket; extra arguments
    go to pytest (e.g. ``nox -s tests -- -m "not slow" -x``).
    """
    install_project(session, "test")
    session.run("pytest", "tests", "-n", "2", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check and mypy --strict over modelcheck and tests."""
    install_project(session, "lint")
    session.run("ruff", "check", "modelcheck", "tests", "machines", "noxfile.py")
    session.run("ruff", "format", "--check", "modelcheck", "tests", "machines", "noxfile.py")
    session.run("mypy", "--strict", "modelcheck", "tests")
    session.run("mypy", "--strict", "machines")  # a separate run: conftest names repeat


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site; warnings are errors."""
    install_project(session, "docs")
    session.run("mkdocs", "build", "--strict", *session.posargs)


@nox.session
def stateful(session: nox.Session) -> None:
    """Run the state machines in ``machines/``; pass plugin options after ``--``.

    e.g. ``nox -s stateful -- --modelcheck-profile=ci --modelcheck-dsn=postgresql://...``.
    The plugin loads through its pytest11 entry point, so no ``-p`` is needed.
    """
    install_project(session, "test")
    session.run("pytest", "machines", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Measure steps/s, reset and snapshot costs against a SELECT-1 baseline; no asserts.

    Writes ``bench-report.json`` and prints a table; extra arguments go to
    ``python -m modelcheck bench`` (e.g. ``nox -s bench -- --repeats 9``). py-spy is
    installed for profiling (``py-spy record -o p.svg -- python -m modelcheck bench``).
    Off by default: it takes minutes and its figures only mean something on a quiet box.
    """
    install_project(session)
    session.install("py-spy")
    session.run("python", "-m", "modelcheck", "bench", *session.posargs)


@nox.session
def stress(session: nox.Session) -> None:
    """Stress the target with parallel workers and check the history (docs/stress.md).

    Off by default (a minute of load). Arguments go to ``python -m modelcheck stress``,
    e.g. ``nox -s stress -- --workers 64 --duration 60s --html stress.html``.
    """
    install_project(session, "test")
    args = session.posargs or ["--workers", "32", "--duration", "60s"]
    session.run("python", "-m", "modelcheck", "stress", *args)


@nox.session
def mutants(session: nox.Session) -> None:
    """Run the machines against every mutant of the reference; each must be killed.

    Off by default (tens of minutes under the ci profile). Writes
    ``mutants-report.json`` and ``mutants-report.md``; arguments go to
    ``python -m modelcheck mutants``, e.g. ``nox -s mutants -- --mutant mutant-main-deletable``.
    """
    install_project(session, "test")
    session.run("python", "-m", "modelcheck", "mutants", *session.posargs)


@nox.session
def reproduce(session: nox.Session) -> None:
    """Replay a failure trace on a fresh database: ``nox -s reproduce -- TRACE``.

    The same steps, without Hypothesis, against the trace's target; the session fails
    while the failure is still there and passes once it is fixed (docs/failures.md).
    """
    if not session.posargs:
        session.error("Give the trace: nox -s reproduce -- .modelcheck/traces/<file>.json")
    install_project(session)
    session.run("python", "-m", "modelcheck", "replay", *session.posargs)


@nox.session
def weekly(session: nox.Session) -> None:
    """Every machine under fresh seeds until a time budget is spent (docs/long-runs.md).

    Off by default. Arguments go to ``python -m modelcheck weekly``, e.g.
    ``nox -s weekly -- --duration 30m --shard 2/4``; failures are written as traces
    under ``.modelcheck/traces`` and kept in ``.modelcheck/examples``.
    """
    install_project(session, "test")
    session.run("python", "-m", "modelcheck", "weekly", *(session.posargs or ["--duration", "30m"]))


@nox.session
def pggit(session: nox.Session) -> None:
    """The machines against pgGit: ``nox -s pggit -- --pggit-src DIR [pytest args]``.

    DIR is a pgGit checkout (docs/case-studies/pggit.md: v0.2.1 needs repairs to
    install with ON_ERROR_STOP). Without --pggit-src, MODELCHECK_PGGIT_SRC is used.
    pgGit installs once into the template database; each example clones it. Off by
    default: nothing of pgGit is in this repository.
    """
    args = list(session.posargs)
    env = {}
    if "--pggit-src" in args:
        at = args.index("--pggit-src")
        if at + 1 >= len(args):
            session.error("--pggit-src needs a directory: nox -s pggit -- --pggit-src DIR")
        env["MODELCHECK_PGGIT_SRC"] = args[at + 1]
        del args[at : at + 2]
    install_project(session, "test")
    session.run("pytest", "machines/test_pggit.py", "-p", "no:cacheprovider", *args, env=env)


@nox.session
def soak(session: nox.Session) -> None:
    """Every machine under fresh seeds, each seed quiet and under a CPU hog.

    Off by default. ``nox -s soak -- --duration 20m``; prints checked steps, examples,
    crashes, false alarms and outcome divergences (docs/reliability.md).
    """
    install_project(session, "test")
    session.run("python", "-m", "modelcheck", "soak", *(session.posargs or ["--duration", "20m"]))


@nox.session
def fuzz(session: nox.Session) -> None:
    """The machines under HypoFuzz for a time budget (docs/fuzzing.md).

    Off by default. Arguments go to ``python -m modelcheck fuzz``, e.g.
    ``nox -s fuzz -- --duration 10m -n 2``; the dashboard is on http://localhost:9999/,
    examples are kept in ``.modelcheck/examples`` and failures written as traces.
    """
    install_project(session, "test")
    session.run("python", "-m", "modelcheck", "fuzz", *session.posargs)  # default: 10m
