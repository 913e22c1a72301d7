"""Read notifications (seed 000): status 3005 on WhatsApp, Viber and RCS.

The body carries the same `status` object as a delivery status; what makes
it a read is the code, and its state rank beats `delivered`.
"""

from __future__ import annotations

READ_CODE = 3005


def is_read(code: int) -> bool:
    return code == READ_CODE
