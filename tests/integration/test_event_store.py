"""The event log against real PostgreSQL: optimistic appends and a feed that never skips."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import defaultdict

import asyncpg
import msgspec
import pytest

from infra.event_store import (
    AppendItem,
    Checkpoint,
    EventStore,
    NewEvent,
    WrongExpectedVersion,
    append_items,
)
from infra.group_commit import GroupCommitter


def new_event(n: int = 0) -> NewEvent:
    return NewEvent(type="test.happened", data=msgspec.Raw(msgspec.json.encode({"n": n})))


async def test_append_and_read_stream(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    out = await store.append("s-1", -1, [new_event(0), new_event(1)], project_id="p")
    assert out.stream_version == 1
    out = await store.append("s-1", 1, [new_event(2)], project_id="p")
    assert out.stream_version == 2
    events = await store.read_stream("s-1")
    assert [e.version for e in events] == [0, 1, 2]
    assert [msgspec.json.decode(e.data)["n"] for e in events] == [0, 1, 2]
    assert all(e.project_id == "p" and e.type == "test.happened" for e in events)
    assert [e.version for e in await store.read_stream("s-1", after_version=0)] == [1, 2]


async def test_wrong_expected_version_is_a_typed_conflict_and_writes_nothing(
    pool: asyncpg.Pool,
) -> None:
    store = EventStore(pool)
    await store.append("s-2", -1, [new_event()], project_id="p")
    with pytest.raises(WrongExpectedVersion) as info:
        await store.append("s-2", -1, [new_event()], project_id="p")
    assert (info.value.expected, info.value.actual) == (-1, 0)
    with pytest.raises(WrongExpectedVersion):
        await store.append("s-2", 5, [new_event()], project_id="p")
    assert len(await store.read_stream("s-2")) == 1
    # expected=None appends at whatever version the stream has.
    out = await store.append("s-2", None, [new_event()], project_id="p")
    assert out.stream_version == 1


async def test_metadata_and_schema_are_stored(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    event = NewEvent(
        type="test.meta",
        data=msgspec.Raw(b"{}"),
        schema=3,
        metadata={"correlation_id": "c-1", "causation_id": "e-0", "actor": "api_key:k"},
    )
    await store.append("s-3", -1, [event], project_id="p")
    (recorded,) = await store.read_stream("s-3")
    assert recorded.schema_version == 3
    assert recorded.event_id == event.id
    assert msgspec.json.decode(recorded.metadata) == event.metadata


async def test_feed_waits_for_an_earlier_transaction_that_commits_late(pool: asyncpg.Pool) -> None:
    """The bigserial gap: T1 takes a lower position but commits after T2."""
    store = EventStore(pool)
    async with pool.acquire() as slow:
        tx = slow.transaction()
        await tx.start()
        (first,) = await append_items(
            slow, [AppendItem(stream_id="late", project_id="p", expected=-1, events=[new_event()])]
        )
        assert not isinstance(first, WrongExpectedVersion)
        await store.append("early", -1, [new_event()], project_id="p")

        # A reader trusting positions alone would now see `early` and move past `late` for good.
        naive = await pool.fetch("SELECT stream_id, position FROM events ORDER BY position")
        assert [r["stream_id"] for r in naive] == ["early"]
        assert naive[0]["position"] > first.first_position

        # The feed holds back everything the open transaction could still precede.
        assert await store.read_all() == []
        await tx.commit()
    feed = await store.read_all()
    assert [e.stream_id for e in feed] == ["late", "early"]


async def test_concurrent_writers_reader_sees_every_event_exactly_once(pool: asyncpg.Pool) -> None:
    """Eight writers (some holding their transaction open) and group commits race a follower."""
    store = EventStore(pool)
    committer = GroupCommitter(pool, max_batch=32, flushers=3)
    streams = [f"cc-{i}" for i in range(24)]
    appended: set[uuid.UUID] = set()
    conflicts = 0
    # Bounded by work done, not by wall time: a loaded machine must not thin the race out.
    target = 1200
    give_up_at = time.monotonic() + 120.0
    writers_done = asyncio.Event()

    async def writer(seed: int) -> None:
        nonlocal conflicts
        rng = random.Random(seed)
        versions: dict[str, int] = defaultdict(lambda: -1)
        while len(appended) < target and time.monotonic() < give_up_at:
            stream = rng.choice(streams)
            events = [new_event(k) for k in range(rng.randint(1, 3))]
            item = AppendItem(
                stream_id=stream, project_id="p", expected=versions[stream], events=events
            )
            try:
                if seed % 2:
                    out = await committer.submit(item)
                else:
                    async with pool.acquire() as conn, conn.transaction():
                        (res,) = await append_items(conn, [item])
                        if isinstance(res, WrongExpectedVersion):
                            raise res
                        out = res
                        await asyncio.sleep(rng.random() * 0.01)  # commit late on purpose
            except WrongExpectedVersion as exc:
                conflicts += 1
                versions[stream] = exc.actual
                continue
            versions[stream] = out.stream_version
            appended.update(e.id for e in events)

    seen: list[tuple[uuid.UUID, str, int]] = []

    async def reader() -> None:
        checkpoint = Checkpoint()
        while True:
            batch = await store.read_all(after=checkpoint, limit=500)
            if batch:
                assert batch[0].checkpoint > checkpoint
                seen.extend((e.event_id, e.stream_id, e.version) for e in batch)
                checkpoint = batch[-1].checkpoint
            elif writers_done.is_set():
                return
            else:
                await asyncio.sleep(0.002)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(i) for i in range(8)))
    writers_done.set()
    await reading
    await committer.close()

    ids = [s[0] for s in seen]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert set(ids) == appended, "the reader missed or invented events"
    assert len(appended) >= target, f"too little load to prove anything: {len(appended)}"
    assert conflicts > 0, "writers never contended for a stream"
    per_stream: dict[str, list[int]] = defaultdict(list)
    for _, stream, version in seen:
        per_stream[stream].append(version)
    for stream, versions in per_stream.items():
        assert versions == list(range(len(versions))), f"{stream} out of order or gapped"


async def test_group_commit_defers_a_second_append_to_the_same_stream(pool: asyncpg.Pool) -> None:
    """Two appends to one stream submitted together land in order, in separate transactions."""
    committer = GroupCommitter(pool, max_batch=64, flushers=1)
    items = [
        AppendItem(stream_id="same", project_id="p", expected=v - 1, events=[new_event(v)])
        for v in range(5)
    ] + [AppendItem(stream_id=f"other-{i}", project_id="p", expected=-1, events=[new_event()])
         for i in range(5)]  # fmt: skip
    outcomes = await asyncio.gather(*(committer.submit(item) for item in items))
    await committer.close()
    assert [o.stream_version for o in outcomes[:5]] == [0, 1, 2, 3, 4]
    same = await EventStore(pool).read_stream("same")
    assert [msgspec.json.decode(e.data)["n"] for e in same] == [0, 1, 2, 3, 4]
    txids = [e.txid for e in same]
    assert len(set(txids)) == 5, "each append to the same stream needs its own transaction"


async def test_one_conflict_fails_only_its_own_append(pool: asyncpg.Pool) -> None:
    committer = GroupCommitter(pool, max_batch=64, flushers=1)
    await committer.submit(
        AppendItem(stream_id="x", project_id="p", expected=-1, events=[new_event()])
    )
    results = await asyncio.gather(
        committer.submit(
            AppendItem(stream_id="x", project_id="p", expected=-1, events=[new_event()])
        ),
        committer.submit(
            AppendItem(stream_id="y", project_id="p", expected=-1, events=[new_event()])
        ),
        return_exceptions=True,
    )
    await committer.close()
    assert isinstance(results[0], WrongExpectedVersion) and results[0].actual == 0
    assert not isinstance(results[1], BaseException) and results[1].stream_version == 0
