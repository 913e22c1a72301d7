"""`tspipe optouts import` / `export` as a user runs them: real files, a real Redis, one line per bad row."""

from __future__ import annotations

import csv
import io

import redis
from click.testing import CliRunner

from config.settings import reset_settings_cache
from store import keys
from store.state import Store
from tspipe.cli import cli


def run(monkeypatch, redis_url, *args, **env):
    monkeypatch.setenv("REDIS_URL", redis_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    return CliRunner().invoke(cli, ["optouts", *args])


def test_import_reports_changes_and_bad_rows_by_line_then_is_idempotent(monkeypatch, redis_url, tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(
        "address,channel,keyword,time\n"
        "+1 555 010 0001,sms,STOP,2024-05-01T10:00:00Z\n"
        "15550100002,whatsapp,STOPALL,2024-05-01T10:00:01Z\n"
        "15550100003,sms,UNSTOP,1714557602\n"
        "15550100001,sms,START,2024-04-30T09:00:00Z\n"  # older than the STOP above: applied first, then superseded
        "someone@example.com,email,unsubscribe,2024-05-01 10:00:03\n"
        "15550100004,sms,PROMO,2024-05-01T10:00:04Z\n"
        "15550100005,fax,STOP,2024-05-01T10:00:05Z\n"
        "15550100006,sms,STOP,yesterday\n"
        ",sms,STOP,2024-05-01T10:00:06Z\n"
    )
    first = run(monkeypatch, redis_url, "import", str(path), TSPIPE_KEYWORDS="ctia")
    assert first.exit_code == 1
    assert first.stderr.splitlines() == [
        f"tspipe optouts import: {path}: line 7: keyword 'PROMO' is neither a stop nor a start keyword in the keyword map; "
        "add an action column (stop or start)",
        f"tspipe optouts import: {path}: line 8: channel 'fax' is not one of sms, mms, rcs, viber, whatsapp, email",
        f"tspipe optouts import: {path}: line 9: time 'yesterday' is not a date (use ISO 8601, e.g. 2024-05-01T10:00:00Z, or unix seconds)",
        f"tspipe optouts import: {path}: line 10: address '' is neither a phone number nor an e-mail",
    ]
    assert "5 rows imported, 4 bad; 3 addresses changed (3 opted out, 0 opted back in); 0 rows not newer" in first.stdout
    client = redis.Redis.from_url(redis_url)
    store = Store(client)
    assert store.optout("15550100001").opted_out and store.optout("15550100002").keyword == "stopall"
    assert not store.optout("15550100003").opted_out and store.optout("someone@example.com").channel == "email"
    again = run(monkeypatch, redis_url, "import", str(path), TSPIPE_KEYWORDS="ctia")
    assert "0 addresses changed" in again.stdout and "5 rows not newer" in again.stdout
    exported = run(monkeypatch, redis_url, "export")
    assert exported.exit_code == 0
    rows = list(csv.reader(io.StringIO(exported.stdout)))
    assert rows[0] == ["address", "channel", "keyword", "time", "action"]
    assert [r[0] for r in rows[1:]] == ["15550100001", "15550100002", "someone@example.com"]
    assert rows[1] == ["15550100001", "sms", "stop", "2024-05-01T10:00:00.000000Z", "stop"]
    # The export imports back unchanged: the same list, nothing newer.
    out = tmp_path / "out.csv"
    assert run(monkeypatch, redis_url, "export", "--output", str(out)).exit_code == 0
    back = run(monkeypatch, redis_url, "import", str(out))
    assert back.exit_code == 0 and "0 addresses changed" in back.stdout
    assert client.zcard(keys.OPTOUT_INDEX) == 3
    client.close()


def test_action_column_and_header_in_any_order(monkeypatch, redis_url, tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("time,action,address,keyword,channel\n2024-05-01T10:00:00Z,stop,15550100009,ARRET,sms\n"
                    "2024-05-01T10:00:01Z,maybe,15550100010,x,sms\n")
    result = run(monkeypatch, redis_url, "import", str(path))
    assert result.exit_code == 1 and "line 3: action 'maybe' is not stop or start" in result.stderr
    assert Store(redis.Redis.from_url(redis_url)).optout("15550100009").opted_out


def test_missing_file_and_header_are_one_line(monkeypatch, redis_url, tmp_path):
    missing = run(monkeypatch, redis_url, "import", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2 and "Traceback" not in missing.stderr
    path = tmp_path / "h.csv"
    path.write_text("address,channel\n1,sms\n")
    header = run(monkeypatch, redis_url, "import", str(path))
    assert header.exit_code == 1 and "line 1: the header lacks keyword, time" in header.stderr
