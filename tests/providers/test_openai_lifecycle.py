"""Wrapped OpenAI calls meeting the runtime: deferred records, prompts, fork and exit."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import revenium

sys.path.insert(0, str(Path(__file__).parent))
from openai_fixtures import sync_client

HERE = Path(__file__).parent


def _bodies(ledger: Path) -> list[dict[str, object]]:
    with closing(sqlite3.connect(ledger)) as db:
        return [json.loads(body) for (body,) in db.execute("SELECT body FROM records")]


def test_a_captured_prompt_is_the_one_sent_not_what_the_caller_appends_later(
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger.db"
    revenium.configure(capture_prompts=True, ledger_path=ledger)
    messages = [{"role": "user", "content": "What is the refund policy?"}]
    reply = revenium.wrap(sync_client()).chat.completions.create(model="m", messages=messages)
    # A chat loop appends the reply and the next question right after the call.
    messages.append({"role": "assistant", "content": reply.choices[0].message.content or ""})
    messages.append({"role": "user", "content": "And for annual plans?"})
    messages[0]["content"] = "changed"
    revenium.flush_sync(timeout=10)
    (body,) = _bodies(ledger)
    assert json.loads(str(body["inputMessages"])) == [
        {"role": "user", "content": "What is the refund policy?"}
    ]


def test_a_forked_child_does_not_record_the_parents_open_stream(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    revenium.configure(ledger_path=ledger)
    client = revenium.wrap(sync_client())
    stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                            stream=True)  # fmt: skip
    first = next(iter(stream))
    pid = os.fork()
    if pid == 0:  # the child shuts down (finalizing *its* open streams) and leaves
        revenium.shutdown_sync(timeout=5)
        os._exit(0)
    os.waitpid(pid, 0)
    list(stream)  # the parent reads its stream to the end
    revenium.flush_sync(timeout=10)
    rows = [b for b in _bodies(ledger) if b.get("transactionId") == first.id]
    assert len(rows) == 1
    assert rows[0]["stopReason"] == "END"


_ABANDON = """
import sys
sys.path.insert(0, {here!r})
import revenium
from openai_fixtures import sync_client
revenium.configure(ledger_path={ledger!r})
client = revenium.wrap(sync_client())
stream = client.chat.completions.create(model="m", messages=[{{"role": "user", "content": "hi"}}],
                                        stream=True)
next(iter(stream))  # then the program ends, the stream still open, nothing recorded before
"""


def test_a_stream_left_open_at_exit_is_recorded_even_as_the_first_record(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENIUM_")}
    code = textwrap.dedent(_ABANDON.format(here=str(HERE), ledger=str(ledger)))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "internal error" not in done.stderr
    (body,) = _bodies(ledger)
    assert body["stopReason"] == "CANCELLED"
