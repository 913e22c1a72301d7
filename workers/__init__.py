"""Celery side: decode, classify, dedup, apply state, run keyword actions, fan out."""
