"""The public surface: listed once, sorted, all resolvable, and cheap to import."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import revenium


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert revenium.__all__ == sorted(revenium.__all__)
    for name in revenium.__all__:
        assert getattr(revenium, name) is not None, name


def test_unknown_attributes_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'does_not_exist'"):
        revenium.does_not_exist  # type: ignore[attr-defined]  # noqa: B018


def _run(code: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def test_import_does_no_work_and_loads_no_provider_sdk_or_heavy_dependency() -> None:
    result = _run(
        """
        import json, sys, threading
        before = threading.active_count()
        import revenium
        heavy = ("openai", "anthropic", "google", "httpx", "httpx2", "cattrs", "anyio",
                 "tenacity", "sqlite3", "attrs", "attr")
        print(json.dumps({
            "threads": threading.active_count() - before,
            "loaded": sorted(m for m in sys.modules if m.split(".")[0] in heavy),
        }))
        """
    )
    assert result == {"threads": 0, "loaded": []}


def test_first_use_of_scopes_loads_no_provider_sdk_nor_the_wire_stack() -> None:
    result = _run(
        """
        import json, sys
        import revenium
        with revenium.session(organization_name="Acme"):
            revenium.report_tool_call("t", duration_ms=1)
        heavy = ("openai", "anthropic", "google", "httpx2", "cattrs")
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
        """
    )
    assert result == []
