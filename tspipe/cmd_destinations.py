"""`tspipe destinations`: helpers for the webhook destinations of TSPIPE_DESTINATIONS."""

from __future__ import annotations

import click


@click.group("destinations")
def destinations_group() -> None:
    """Webhook destinations (TSPIPE_DESTINATIONS)."""


@destinations_group.command("new-secret")
def new_secret_command() -> None:
    """Print a fresh signing secret (whsec_ + base64 of 32 random bytes) for a destination's "secret"."""
    from pipeline.webhooks import new_secret

    click.echo(new_secret())
