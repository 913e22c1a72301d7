"""`tspipe web` refuses to start without what it needs, with one clear line."""

from __future__ import annotations

from click.testing import CliRunner

from tspipe.cli import cli


def test_web_needs_redis_url() -> None:
    result = CliRunner().invoke(cli, ["web"])
    assert result.exit_code == 2
    assert "REDIS_URL is not set" in result.output


def test_web_reports_bad_setting(monkeypatch) -> None:
    monkeypatch.setenv("TSPIPE_MAX_BODY_BYTES", "lots")
    result = CliRunner().invoke(cli, ["web"])
    assert result.exit_code == 2
    assert "TSPIPE_MAX_BODY_BYTES" in result.output
