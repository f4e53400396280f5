"""Developer tasks. ``nox -s tests`` is the README's test command and what CI runs.

Every session installs what it needs from the project's own metadata (``pyproject.toml``
extras), so a fresh machine with Python and ``pip install nox`` can run all of them.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

PYTHON = "3.11"
# Every provider SDK the adapters support, as users install them.
TEST_EXTRAS = "dev,openai,anthropic,bedrock,google,prices"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite, examples included (they run offline as smoke tests).

    Provider SDKs come from their extras, exactly as a user installs them.
    """
    session.install("-e", f".[{TEST_EXTRAS}]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.9")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict and pyright (strict) over the package and the typing tests."""
    session.install("-e", f".[{TEST_EXTRAS}]")
    session.run("mypy")
    session.run("pyright")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly: a broken link or missing page fails."""
    session.install("-e", ".", "mkdocs>=1.6")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The README's main job: an offline demo that meters real SDK clients."""
    session.install("-e", ".[openai,anthropic,google,prices]")
    session.run("revenium", "demo", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks; figures go to docs/benchmarks.md (see benchmarks/README.md).

    The existing SDK, measured beside ours (figure 12), goes into this session's venv only:
    it is never a dependency of the project. Its import patches the ``openai`` classes, so the
    figures import it only in processes of their own.
    """
    session.install("-e", f".[{TEST_EXTRAS}]")
    session.install("revenium-python-sdk==0.12.0")
    session.run("python", "benchmarks/run.py", *session.posargs)
