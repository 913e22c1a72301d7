import redis

from tspipe.redis_server import RedisServer


def test_embedded_redis_keeps_data_across_restart(tmp_path):
    server = RedisServer(tmp_path / "r", appendonly=True).start()
    try:
        assert server.port != 6379
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        client.close()
        server.restart()
        client = redis.Redis.from_url(server.url)
        assert client.get("k") == b"v"
        client.close()
    finally:
        server.stop()
    assert server.process is None
