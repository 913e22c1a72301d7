"""SMS Verify statuses (seed 002): a delivery report with a `verify` object.

`verify.code_state` tells whether the end user entered the right code;
`additional_info` values may be strings or numbers and are kept in `raw`.
"""

from __future__ import annotations

from pipeline.event import VerifyState
from pipeline.wire import WireVerify, text


def verify_of(verify: WireVerify) -> VerifyState:
    return VerifyState(code_state=text(verify.code_state), code_entered=text(verify.code_entered))
