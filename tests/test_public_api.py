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


def test_scopes_load_no_delivery_stack_and_records_load_no_provider_sdk() -> None:
    result = _run(
        """
        import json, sys, threading
        import revenium
        def loaded(*names):
            return sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in names})
        with revenium.session(organization_name="Acme"):
            scopes_only = loaded("httpx", "cattrs", "anyio", "tenacity", "sqlite3")
            threads_before = threading.active_count()
            revenium.report_tool_call("t", duration_ms=1)
            after_record = loaded("openai", "anthropic", "google", "httpx2")
            started = threading.active_count() - threads_before
        revenium.shutdown_sync()
        print(json.dumps({"scopes": scopes_only, "record": after_record, "threads": started}))
        """
    )
    # The first record starts the one runtime thread; no provider SDK is ever imported.
    assert result["scopes"] == []
    assert result["record"] == []
    assert result["threads"] >= 1
