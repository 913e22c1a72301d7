"""Celery side: decode, classify, dedup, apply state, run keyword actions, fan out.

Importing this package builds no Celery app: workers/app.py builds it on first use (`get_app()`).
"""
