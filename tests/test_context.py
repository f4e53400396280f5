"""Scopes: nesting, precedence, every function shape, and isolation under concurrency."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio
import anyio.lowlevel
import pytest

import revenium
from revenium.attribution import Metadata
from revenium.context import current_metadata, effective_metadata, is_metered


def test_nested_sessions_merge_field_by_field_and_restore_on_exit() -> None:
    with revenium.session(organization_name="Acme", trace_id="outer"):
        with revenium.session(trace_id="inner", agent="bot") as inner:
            assert inner == Metadata(organization_name="Acme", trace_id="inner", agent="bot")
            assert current_metadata() == inner
        assert current_metadata() == Metadata(organization_name="Acme", trace_id="outer")
    assert current_metadata() == Metadata()


def test_a_scope_is_restored_when_the_body_raises() -> None:
    with pytest.raises(KeyError), revenium.session(agent="a"):
        raise KeyError
    assert current_metadata() == Metadata()


async def test_async_with_works_the_same() -> None:
    async with revenium.session(product_name="chat") as md:
        assert md.product_name == "chat"
        await asyncio.sleep(0)
        assert current_metadata().product_name == "chat"
    assert current_metadata() == Metadata()


def test_one_scope_object_cannot_be_entered_twice_at_once() -> None:
    scope = revenium.session(agent="a")
    with scope, pytest.raises(RuntimeError, match="already entered"), scope:
        pass
    with scope:  # sequential reuse is fine
        assert current_metadata().agent == "a"


def test_decorated_function_sees_its_metadata_and_caller_does_not() -> None:
    @revenium.metadata(task_type="support")
    def handler() -> Metadata:
        return current_metadata()

    with revenium.session(organization_name="Acme"):
        assert handler() == Metadata(organization_name="Acme", task_type="support")
        assert current_metadata() == Metadata(organization_name="Acme")


async def test_decorated_coroutine() -> None:
    @revenium.metadata(task_type="async")
    async def handler() -> Metadata:
        await asyncio.sleep(0)
        return current_metadata()

    assert (await handler()).task_type == "async"
    assert current_metadata() == Metadata()


def test_decorated_generator_applies_per_step_without_leaking_to_the_consumer() -> None:
    @revenium.metadata(agent="gen")
    def produce() -> Iterator[str | None]:
        for _ in range(3):
            yield current_metadata().agent

    seen_by_consumer = []
    for item in produce():
        assert item == "gen"
        seen_by_consumer.append(current_metadata().agent)
    assert seen_by_consumer == [None, None, None]


def test_decorated_generator_send_throw_close_and_return_value() -> None:
    log: list[object] = []

    @revenium.metadata(agent="echo")
    def echo() -> Iterator[object]:
        received = yield "ready"
        while True:
            try:
                received = yield (received, current_metadata().agent)
            except ValueError as exc:
                log.append(("caught", str(exc)))
                received = "after-throw"
            except GeneratorExit:
                log.append(("closed", current_metadata().agent))
                raise

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send("x") == ("x", "echo")
    assert gen.throw(ValueError("boom")) == ("after-throw", "echo")
    gen.close()
    assert log == [("caught", "boom"), ("closed", "echo")]


def test_decorated_generator_return_value_reaches_yield_from() -> None:
    @revenium.metadata(agent="r")
    def inner() -> Iterator[int]:
        yield 1
        return 99

    def outer() -> Iterator[int]:
        result = yield from inner()
        yield result

    assert list(outer()) == [1, 99]


async def test_decorated_async_generator_applies_per_step() -> None:
    @revenium.metadata(agent="agen")
    async def produce() -> AsyncIterator[str | None]:
        for _ in range(2):
            await asyncio.sleep(0)
            yield current_metadata().agent

    results = [(item, current_metadata().agent) async for item in produce()]
    assert results == [("agen", None), ("agen", None)]


async def test_decorated_async_generator_asend_athrow_aclose() -> None:
    @revenium.metadata(agent="a")
    async def echo() -> AsyncIterator[object]:
        received = yield "ready"
        while True:
            try:
                received = yield (received, current_metadata().agent)
            except ValueError:
                received = "recovered"

    agen = echo()
    assert await agen.asend(None) == "ready"
    assert await agen.asend(1) == (1, "a")
    assert await agen.athrow(ValueError("x")) == ("recovered", "a")
    await agen.aclose()


def test_decorators_keep_the_function_name_and_doc() -> None:
    @revenium.metadata(agent="a")
    def documented() -> None:
        """Docs."""

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Docs."


def test_selective_metering_only_meters_inside_meter_scopes() -> None:
    assert is_metered(selective=False)
    assert not is_metered(selective=True)

    @revenium.meter(task_type="premium")
    def premium() -> tuple[bool, Metadata]:
        return is_metered(selective=True), current_metadata()

    assert premium() == (True, Metadata(task_type="premium"))
    assert not is_metered(selective=True)


def test_seed_aliases_are_the_same_functions() -> None:
    assert revenium.revenium_metadata is revenium.metadata
    assert revenium.revenium_meter is revenium.meter


def test_precedence_env_then_client_then_scopes_then_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVENIUM_ENVIRONMENT", "prod")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    client = Metadata(product_name="from-client", agent="client-agent", environment="client-env")
    call = Metadata(agent="call-agent")
    with revenium.session(product_name="from-session", trace_id="t"):
        md = effective_metadata(client=client, call=call)
    assert md == Metadata(
        environment="client-env",
        region="us-east-1",
        product_name="from-session",
        trace_id="t",
        agent="call-agent",
    )


async def test_hundreds_of_concurrent_tasks_never_see_each_others_metadata() -> None:
    async def task(i: int) -> list[str | None]:
        seen = []
        async with revenium.session(organization_name=f"org-{i}", trace_id=f"t-{i}"):
            for _ in range(5):
                await asyncio.sleep(0)  # interleave with every other task
                seen.append(current_metadata().organization_name)
                record = revenium.report_tool_call("probe", duration_ms=1)
                assert record.metadata.trace_id == f"t-{i}"
        seen.append(current_metadata().organization_name)
        return seen

    results = await asyncio.gather(*(task(i) for i in range(300)))
    for i, seen in enumerate(results):
        assert seen == [f"org-{i}"] * 5 + [None]


async def test_anyio_task_groups_and_worker_threads_carry_the_spawning_scope() -> None:
    seen: dict[int, list[str | None]] = {}

    def in_thread() -> str | None:
        return current_metadata().organization_name

    async def task(i: int) -> None:
        async with revenium.session(organization_name=f"org-{i}"):
            await anyio.lowlevel.checkpoint()
            a = await anyio.to_thread.run_sync(in_thread)
            b = await asyncio.to_thread(in_thread)
            seen[i] = [a, b, current_metadata().organization_name]

    async with anyio.create_task_group() as tg:
        for i in range(200):
            tg.start_soon(task, i)
    assert seen == {i: [f"org-{i}"] * 3 for i in range(200)}


def test_threads_are_isolated_and_carry_context_hands_the_scope_to_a_pool() -> None:
    barrier = threading.Barrier(8)
    results: dict[int, list[str | None]] = {}

    def worker(i: int) -> None:
        with revenium.session(organization_name=f"org-{i}"):
            barrier.wait()
            results[i] = [current_metadata().organization_name for _ in range(100)]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: [f"org-{i}"] * 100 for i in range(8)}

    def read() -> str | None:
        return current_metadata().organization_name

    with ThreadPoolExecutor(max_workers=4) as pool:
        with revenium.session(organization_name="carried"):
            carried = [pool.submit(revenium.carry_context(read)) for _ in range(20)]
            bare = [pool.submit(read) for _ in range(20)]
        assert {f.result() for f in carried} == {"carried"}
        assert {f.result() for f in bare} == {None}  # a bare pool thread sees no one's scope
