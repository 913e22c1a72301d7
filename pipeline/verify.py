"""SMS Verify statuses (seed 002): a delivery report with a `verify` object.

`verify.code_state` tells whether the end user entered the right code;
`additional_info` values may be strings or numbers and are kept in `raw`.
"""

from __future__ import annotations

from pipeline.event import VerifyState
from pipeline.wire import WireVerify


def verify_of(verify: WireVerify) -> VerifyState:
    return VerifyState(code_state=verify.code_state or None, code_entered=verify.code_entered or None)
