"""Redis Streams against NATS JetStream as the event log, brokers alone (no server).

What docs/decisions/0002-broker.md compares: one producer appends JSON events (about the
size of an activity_event) to a capped, in-memory log; one consumer reads them as they
arrive, the way every node reads every environment's stream.

- latency: events published one at a time at a fixed rate; publish-to-consume p50/p99;
- throughput: events published flat out (pipelined: Redis pipelines of 100 XADDs,
  JetStream 100 publishes in flight); appended and consumed per second.

Both through their asyncio Python clients (``redis``, ``nats-py``; not test dependencies:
``pip install redis nats-py``), both servers Debian's (``redis-server``, ``nats-server
-js``) on loopback, in-memory. The clients' own cost is in every figure, the same way for
both; the ratios are the point.

    python benches/broker_raw.py [--rate 1000] [--seconds 3] [--count 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from broker_helpers import Redis, find, free_port, wait_port

PAYLOAD = {"event_type": "fall_detected", "severity": "high", "person_id": 3,
           "confidence": 0.91, "location": {"x": 2.1, "y": 1.8}, "environment_id": "ward_3",
           "metadata": {"track_id": 17, "duration_s": 1.2}}


def body(i: int) -> bytes:
    return json.dumps({**PAYLOAD, "n": i, "t": time.perf_counter()}).encode()


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p * (len(xs) - 1)))] if xs else float("nan")


# -- Redis Streams ----------------------------------------------------------------------------
async def redis_run(url: str, rate: float, seconds: float, count: int) -> dict:
    import redis.asyncio as aioredis

    prod = aioredis.from_url(url)
    cons = aioredis.from_url(url)
    key = "bench:env:ward_3"
    await prod.delete(key)

    async def consume(n: int, lat: list[float]) -> None:
        last = "0-0"
        got = 0
        while got < n:
            reply = await cons.xread({key: last}, count=1000, block=1000)
            now = time.perf_counter()
            for _, entries in reply:
                for eid, fields in entries:
                    last = eid
                    got += 1
                    lat.append(now - json.loads(fields[b"d"])["t"])

    # latency at a fixed rate
    n = int(rate * seconds)
    lat: list[float] = []
    task = asyncio.create_task(consume(n, lat))
    start = time.perf_counter()
    for i in range(n):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        await prod.xadd(key, {"t": "activity_event", "d": body(i)}, maxlen=10_000,
                        approximate=True)
    await task
    # throughput flat out
    await prod.delete(key)
    done: list[float] = []
    task = asyncio.create_task(consume(count, done))
    start = time.perf_counter()
    for base in range(0, count, 100):
        pipe = prod.pipeline(transaction=False)
        for i in range(base, min(count, base + 100)):
            pipe.xadd(key, {"t": "activity_event", "d": body(i)}, maxlen=100_000,
                      approximate=True)
        await pipe.execute()
    appended = time.perf_counter() - start
    await task
    consumed = time.perf_counter() - start
    await prod.aclose()
    await cons.aclose()
    return {"broker": "Redis Streams", "p50_ms": pct(lat, 0.5) * 1e3,
            "p99_ms": pct(lat, 0.99) * 1e3, "append_per_s": count / appended,
            "consume_per_s": count / consumed}


# -- NATS JetStream ---------------------------------------------------------------------------
async def nats_run(url: str, rate: float, seconds: float, count: int) -> dict:
    import nats
    from nats.js.api import StorageType, StreamConfig

    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="BENCH", subjects=["bench.>"], max_msgs=100_000,
                                     storage=StorageType.MEMORY))

    async def consume(n: int, lat: list[float]) -> None:
        got = 0
        fut: asyncio.Future = asyncio.get_running_loop().create_future()

        async def on_msg(msg) -> None:
            nonlocal got
            lat.append(time.perf_counter() - json.loads(msg.data)["t"])
            got += 1
            if got >= n and not fut.done():
                fut.set_result(None)

        sub = await js.subscribe("bench.>", cb=on_msg, ordered_consumer=True,
                                 deliver_policy="new")
        await ready.put(None)
        await fut
        await sub.unsubscribe()

    n = int(rate * seconds)
    lat: list[float] = []
    ready: asyncio.Queue = asyncio.Queue()
    task = asyncio.create_task(consume(n, lat))
    await ready.get()
    start = time.perf_counter()
    for i in range(n):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        await js.publish("bench.ward_3", body(i))  # waits for the stream's ack, like XADD
    await task
    done: list[float] = []
    task = asyncio.create_task(consume(count, done))
    await ready.get()
    start = time.perf_counter()
    for base in range(0, count, 100):
        await asyncio.gather(*(js.publish("bench.ward_3", body(i))
                               for i in range(base, min(count, base + 100))))
    appended = time.perf_counter() - start
    await task
    consumed = time.perf_counter() - start
    await js.delete_stream("BENCH")
    await nc.close()
    return {"broker": "NATS JetStream", "p50_ms": pct(lat, 0.5) * 1e3,
            "p99_ms": pct(lat, 0.99) * 1e3, "append_per_s": count / appended,
            "consume_per_s": count / consumed}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--count", type=int, default=50_000)
    p.add_argument("--rounds", type=int, default=3, help="median of this many runs")
    a = p.parse_args()
    nats_exe = find("nats-server")
    if nats_exe is None:
        sys.exit("nats-server is not installed (apt-get install nats-server)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        redis = Redis(Path(tmp)).start()
        port = free_port()
        nats_proc = subprocess.Popen([nats_exe, "-js", "-a", "127.0.0.1", "-p", str(port),
                                      "-sd", tmp], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            for name, fn, url in (("redis", redis_run, redis.url),
                                  ("nats", nats_run, f"nats://127.0.0.1:{port}")):
                runs = [asyncio.run(fn(url, a.rate, a.seconds, a.count))
                        for _ in range(a.rounds)]
                row = dict(runs[0])
                for k in ("p50_ms", "p99_ms", "append_per_s", "consume_per_s"):
                    row[k] = statistics.median(r[k] for r in runs)
                rows.append(row)
        finally:
            nats_proc.terminate()
            nats_proc.wait(5)
            redis.stop()
    print(f"latency at {a.rate:g} events/s for {a.seconds:g} s; throughput over {a.count} "
          f"events; median of {a.rounds}")
    print(f"{'broker':<16} {'p50 ms':>8} {'p99 ms':>8} {'append/s':>10} {'consume/s':>10}")
    for r in rows:
        print(f"{r['broker']:<16} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} "
              f"{r['append_per_s']:>10.0f} {r['consume_per_s']:>10.0f}")


if __name__ == "__main__":
    main()
