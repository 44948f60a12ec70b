"""The Redis broker against a real Redis, and two server processes sharing it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest

from telehealth.signaling import RedisBroker
from telehealth.signaling.broker import BrokerUnavailable, PresenceItem
from telehealth.signaling.codec import BusFrame
from telehealth.signaling.messages import Offer
from tests.signaling.procs import ThrowawayRedis, signaling_server
from tests.signaling.wsclient import SDP, Peer, clinician, connect, patient

pytestmark = pytest.mark.usefixtures("require_redis")


@pytest.fixture
async def throwaway_redis() -> AsyncIterator[ThrowawayRedis]:
    """A private Redis this test may kill and restart on the same port."""
    redis = ThrowawayRedis()
    await redis.start()
    yield redis
    await redis.stop()


def frame(sdp: str) -> BusFrame:
    """A small bus frame."""
    return BusFrame("other-node", "a", "b", Offer(peer="a", sdp=sdp))


async def test_frames_reach_subscribers_in_other_brokers(require_redis: str) -> None:
    one, two = RedisBroker(require_redis), RedisBroker(require_redis)
    await one.start()
    await two.start()
    try:
        got: asyncio.Queue[BusFrame] = asyncio.Queue()
        channel = f"test:{uuid.uuid4().hex}"
        sub = await two.subscribe(channel, got.put_nowait)
        sent = frame("hello")
        await one.publish(channel, sent)
        assert await asyncio.wait_for(got.get(), 5) == sent
        await sub.close()
    finally:
        await one.close()
        await two.close()


async def test_presence_entries_expire_individually(require_redis: str) -> None:
    broker = RedisBroker(require_redis)
    await broker.start()
    scope = f"visit:{uuid.uuid4().hex}"
    try:
        await broker.set_presence([PresenceItem(scope, "old", "1")], ttl=-1)
        await broker.set_presence([PresenceItem(scope, "new", "2")], ttl=30)
        assert (await broker.presence([scope]))[scope] == {"new": "2"}
        await broker.remove_presence(scope, "new")
        assert (await broker.presence([scope]))[scope] == {}
    finally:
        await broker.close()


async def test_broker_resubscribes_and_resyncs_after_redis_restart(
    throwaway_redis: ThrowawayRedis,
) -> None:
    broker = RedisBroker(throwaway_redis.url)
    resynced = asyncio.Event()

    async def hook() -> None:
        resynced.set()

    broker.on_resync(hook)
    await broker.start()
    try:
        got: asyncio.Queue[BusFrame] = asyncio.Queue()
        await broker.subscribe("room", got.put_nowait)
        await throwaway_redis.kill()
        with pytest.raises(BrokerUnavailable):
            await broker.publish("room", frame("lost"))
        await throwaway_redis.start()
        await asyncio.wait_for(resynced.wait(), 15)
        sent = frame("after")
        await broker.publish("room", sent)
        assert await asyncio.wait_for(got.get(), 5) == sent
    finally:
        await broker.close()


async def two_sided_visit(http: aiohttp.ClientSession, a: str, b: str, visit: str) -> tuple[Peer, Peer]:
    """Patient on server a, clinician on server b: wait, admit. Returns (clinician, patient)."""
    pat = await patient(http, a, visit, "pat")
    await pat.expect("waiting")
    doc = await clinician(http, b, visit)
    join = next(m for m in doc.seen if m["type"] == "join")
    assert [p["participant_id"] for p in join["participants"]] == ["pat"]
    await doc.send("admit", participant_id="pat")
    await pat.expect("admit")
    assert (await pat.expect("presence"))["participant"]["participant_id"] == "c-drwho"
    return doc, pat


async def exchange(doc: Peer, pat: Peer, tag: str) -> None:
    """Offer, answer and an ICE candidate each way, asserting each is relayed."""
    await doc.send("offer", peer="pat", sdp=f"{SDP}{tag}")
    assert (await pat.expect("offer"))["sdp"].endswith(tag)
    await pat.send("answer", peer="c-drwho", sdp=f"{SDP}{tag}")
    assert (await doc.expect("answer"))["peer"] == "pat"
    cand = {"candidate": f"candidate:{tag} 1 udp 1 10.0.0.1 9 typ host", "sdpMid": "0"}
    await pat.send("ice_candidate", candidate=cand)
    assert (await doc.expect("ice_candidate"))["candidate"] == {
        **cand, "sdpMLineIndex": None, "usernameFragment": None,
    }  # fmt: skip
    await doc.send("ice_candidate", candidate=cand)
    assert (await pat.expect("ice_candidate"))["peer"] == "c-drwho"


async def test_visit_across_two_processes_via_redis(require_redis: str) -> None:
    visit = f"x{uuid.uuid4().hex[:10]}"
    async with (
        signaling_server(require_redis, "node-a") as server_a,
        signaling_server(require_redis, "node-b") as server_b,
        aiohttp.ClientSession() as http,
    ):
        a, b = server_a.url, server_b.url
        doc, pat = await two_sided_visit(http, a, b, visit)
        await exchange(doc, pat, "first")
        await doc.send("hangup")
        assert (await pat.expect("hangup"))["reason"] == "ended"
        assert await pat.closed() == 4012
        async with http.get(f"{b}/_test/states") as resp:
            assert (await resp.json())[visit] == ["in_call", "ended"]
        async with http.get(f"{a}/_test/states") as resp:
            assert (await resp.json())[visit] == ["waiting"]


async def test_resume_on_the_other_process(require_redis: str) -> None:
    visit = f"x{uuid.uuid4().hex[:10]}"
    async with (
        signaling_server(require_redis, "node-a") as server_a,
        signaling_server(require_redis, "node-b") as server_b,
        aiohttp.ClientSession() as http,
    ):
        a, b = server_a.url, server_b.url
        doc, pat = await two_sided_visit(http, a, b, visit)
        token = next(m for m in pat.seen if m["type"] == "join")["resume_token"]
        await pat.ws.close()
        await doc.expect("presence")  # connected: false
        moved = await connect(http, f"{b}/ws/visit/{visit}")
        await moved.send("resume", resume_token=token)
        assert (await moved.expect("join"))["resumed"] is True
        assert (await doc.expect("ice_restart"))["peer"] == "pat"
        await exchange(doc, moved, "moved")


async def test_redis_restart_mid_visit_recovers_without_reconnecting(
    throwaway_redis: ThrowawayRedis,
) -> None:
    visit = f"x{uuid.uuid4().hex[:10]}"
    async with (
        signaling_server(throwaway_redis.url, "node-a", presence_ttl=3) as server_a,
        signaling_server(throwaway_redis.url, "node-b", presence_ttl=3) as server_b,
        aiohttp.ClientSession() as http,
    ):
        a, b = server_a.url, server_b.url
        doc, pat = await two_sided_visit(http, a, b, visit)
        await exchange(doc, pat, "before")
        await throwaway_redis.kill()
        ref = await doc.send("offer", peer="pat", sdp=SDP)
        assert (await doc.expect("error", ref=ref))["code"] == "unavailable"
        await throwaway_redis.start()
        # Clients retry on `unavailable`; the same sockets carry on once Redis is back.
        await until_relayed(doc, pat)
        await exchange(doc, pat, "after")
        # Presence survived too: after more than two refresh rounds neither side saw a departure.
        await asyncio.sleep(3)
        await exchange(doc, pat, "later")
        for peer in (doc, pat):
            left = [m for m in peer.seen if m["type"] == "presence"]
            assert all(m["participant"]["status"] != "left" for m in left)
            assert not peer.ws.closed


async def test_participants_of_a_crashed_process_expire(require_redis: str) -> None:
    visit = f"x{uuid.uuid4().hex[:10]}"
    async with (
        signaling_server(require_redis, "node-a", presence_ttl=1) as server_a,
        signaling_server(require_redis, "node-b", presence_ttl=1) as server_b,
        aiohttp.ClientSession() as http,
    ):
        doc, _ = await two_sided_visit(http, server_a.url, server_b.url, visit)
        server_a.crash()  # the patient's process dies without saying goodbye
        async with asyncio.timeout(20):
            while True:
                update = await doc.expect("presence", wait=20)
                if update["participant"]["status"] == "left":
                    break
        assert update["participant"]["participant_id"] == "pat"
        assert not doc.ws.closed


async def until_relayed(doc: Peer, pat: Peer) -> None:
    """Retry a probe offer (as a client does on `unavailable`) until the patient gets one."""
    async with asyncio.timeout(30):
        while True:
            await doc.send("offer", peer="pat", sdp=f"{SDP}probe")
            try:
                await pat.expect("offer", sdp=f"{SDP}probe", wait=1)
                return
            except TimeoutError:
                continue
