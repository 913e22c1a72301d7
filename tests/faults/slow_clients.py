"""Slow-body clients in a process of their own: `python -m tests.faults.slow_clients PORT COUNT`.

Each connection sends its headers at once, promises a 60 KB body and trickles it one byte a second.
Prints `ready` once every connection is open (or refused), then, when a line (or EOF) arrives on
stdin, a JSON tally of how the server ended each one. A separate process, so the 1,000 clients'
timers do not delay the test's own measuring client.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys


def _room_for_sockets(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed if hard == resource.RLIM_INFINITY else min(needed, hard), hard))


async def _slow_body(port: int, opened: list[int], stop: asyncio.Event) -> str:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        opened.append(0)
        return f"connect failed: {exc.__class__.__name__}"
    opened.append(1)
    try:
        writer.write(b"POST /callbacks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 60000\r\n\r\n{")
        while not stop.is_set():
            try:
                data = await asyncio.wait_for(reader.read(200), 1.0)
            except asyncio.TimeoutError:
                writer.write(b" ")
                continue
            return data.split(b"\r\n", 1)[0].decode(errors="replace") if data else "closed"
        return "still open"
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    finally:
        writer.close()


async def main(port: int, count: int) -> None:
    _room_for_sockets(count + 100)
    stop = asyncio.Event()
    opened: list[int] = []
    tasks = [asyncio.create_task(_slow_body(port, opened, stop)) for _ in range(count)]
    while len(opened) < count:
        await asyncio.sleep(0.02)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), stop.set)
    await stop.wait()
    tally: dict[str, int] = {}
    for ending in await asyncio.gather(*tasks):
        tally[ending] = tally.get(ending, 0) + 1
    print(json.dumps(tally), flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
