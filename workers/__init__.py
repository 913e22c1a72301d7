"""Celery side: decode, classify, dedup, apply state, run keyword actions, fan out."""

from workers.app import app

__all__ = ["app"]
