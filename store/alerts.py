"""Raised delivery-rate alerts in Redis: each raised once, the latest kept for the dashboard, counted for /metrics.

The evaluator (beat, every TSPIPE_ALERT_INTERVAL_SECONDS) recomputes the
same alert, with the same id, as long as a group stays down in one window;
`raise_alert` claims the id (SET NX with a TTL past the window) so only the
first run publishes it, appends it to the recent list and counts it, in one
script call.
"""

from __future__ import annotations

import redis

from store import keys

RECENT_MAX = 100
COUNTER = 'tspipe_alerts_total{{dimension="{dimension}"}}'

# KEYS[1] the alert's claim, KEYS[2] the recent list, KEYS[3] the metrics hash.
# ARGV[1] claim TTL (s), ARGV[2] the alert (JSON), ARGV[3] the counter field, ARGV[4] most alerts kept.
# Returns 1 when this call raised the alert, 0 when it was raised already.
_RAISE = r"""
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
return 1
"""


class AlertStore:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._raise = client.register_script(_RAISE)

    def raise_alert(self, event_id: str, dimension: str, alert_json: bytes, ttl_seconds: int) -> bool:
        """True when this is the first time the alert is raised."""
        names = [keys.ALERT_CLAIM.format(event_id=event_id), keys.ALERTS, keys.METRICS]
        return bool(self._raise(keys=names, args=[ttl_seconds, alert_json, COUNTER.format(dimension=dimension),
                                                 RECENT_MAX]))

    def recent(self, limit: int = 20) -> list[bytes]:
        return self.client.lrange(keys.ALERTS, 0, limit - 1)
