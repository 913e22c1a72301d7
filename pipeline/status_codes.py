"""Telesign's status and error codes as data, transcribed from the seed pages.

Each row: code -> (description, outcome, final, retryable). `final` follows
the seed's "(Final)"/"(Intermediate)" where it says one; where it is silent,
pending outcomes are intermediate and every other outcome final
(CONTRACT.md section 1). `retryable` is true where the seed calls the error
temporary or says to resubmit. A code missing here is classified as
`unknown`, never an exception: Telesign adds codes without notice.
"""

from __future__ import annotations

from typing import NamedTuple

from pipeline.event import Outcome

D, R, P, F, B, J, U, I = (
    Outcome.DELIVERED,
    Outcome.READ,
    Outcome.PENDING,
    Outcome.FAILED,
    Outcome.BLOCKED,
    Outcome.REJECTED,
    Outcome.UNKNOWN,
    Outcome.RECEIVED,
)

# 3000 is final only on channels without read receipts: a 3005 may follow on these.
READ_RECEIPT_CHANNELS = frozenset({"whatsapp", "viber", "rcs"})
DELIVERED_AWAITING_READ = 3000
INBOUND = 1500


class CodeInfo(NamedTuple):
    description: str
    outcome: Outcome
    final: bool
    retryable: bool = False


# Rows: (code, description, outcome, finality stated by the seed or None, retryable).
# None means the seed is silent and the contract's default rule applies.
_ROWS: tuple[tuple[int, str, Outcome, bool | None, bool], ...] = (
    # --- Messaging (seed 000): 3000-3601 ---
    (3000, "Delivered", D, True, False),
    (3001, "Message in progress", P, False, False),
    (3002, "Delivered to Gateway", P, False, False),
    (3003, "Delivery error", F, True, False),
    (3005, "Message is read", R, True, False),
    (3006, "None of the channels is enabled for the customer", J, True, False),
    (3011, "Provider Account registration error", J, None, False),
    (3012, "Provider Account migration error", J, None, False),
    (3030, "Temporary phone error", F, True, True),
    (3031, "Permanent phone error", F, True, False),
    (3032, "Gateway/network cannot route message", F, True, False),
    (3033, "Message expired before delivery", F, True, False),
    (3034, "SMS not supported", F, None, False),
    (3035, "Invalid/unsupported", J, None, False),
    (3036, "Price threshold exceeded", B, None, False),
    (3037, "Message blocked in requested country", B, None, False),
    (3038, "Destination blocked by prefix", B, None, False),
    (3039, "Final status unknown", U, None, False),
    (3040, "Queued by gateway", P, None, False),
    (3041, "Carrier rejected - temporary problem", F, None, True),
    (3042, "Carrier rejected - permanent error", F, None, False),
    (3043, "Error on gateway - temporary error", F, None, True),
    (3044, "Error on gateway - permanent error", F, None, False),
    (3045, "Parameters problem", J, None, False),
    (3046, "Message blocked by subscriber action or request", B, None, False),
    (3047, "Subscriber low on credit", F, None, False),
    (3048, "Roaming error", F, None, False),
    (3049, "Mobile number portability error", F, None, False),
    (3050, "Subscriber absent", F, None, True),
    (3051, "Suspected spam", F, None, False),
    (3052, "Message blocked by your request", B, None, False),
    (3053, "Message blocked by TeleSign", B, None, False),
    (3054, "Delivery channel not supported by the end user's device", F, True, False),
    (3055, "Error on gateway - temporary error", F, None, True),
    (3056, "Message failed to deliver in specified fallback time", F, False, False),
    (3057, "Invalid source address", J, None, False),
    (3058, "The requested API host is not allowed for this customer_id", J, None, False),
    (3059, "Exceeded number of elements for rich card", J, None, False),
    (3061, "Media size exceeds the limit", J, None, False),
    (3062, "MMS not supported", F, None, False),
    (3071, "Unverified phone_number requested for trial account.", J, None, False),
    (3073, "Insufficient funds in prepaid wallet", J, None, False),
    (3100, "Unknown channel specified: {channel}", J, False, False),
    (3101, "Invalid value for parameter phone_number: {phone_number}", J, False, False),
    (3102, "Invalid value for parameter message_type: {message_type}", J, True, False),
    (3103, "Unsupported value for parameter external_id: {external_id}", J, True, False),
    (3104, "Invalid value for parameter account_lifecycle_event: {account_lifecycle_event}", J, True, False),
    (3105, "Invalid value for parameter originating_ip: {originating_ip}", J, True, False),
    (3106, "Invalid value for parameter callback_url: {callback_url}", J, True, False),
    (3107, "Invalid country code for parameter phone_number", J, None, False),
    (3108, "Invalid value for parameter message", J, None, False),
    (3109, "Invalid value for parameter sender_id", J, None, False),
    (3110, "Invalid request", J, True, False),
    (3112, "Specified template does not exist for selected channel", J, None, False),
    (3113, "Invalid value for parameter channel: {channels}", J, True, False),
    (3114, "Specified message type not allowed outside of conversation window", J, None, False),
    (3115, "Destination phone number not in coverage", J, None, False),
    (3117, "Invalid value for parameter fbmessager_id: { fbmessager_id}", J, False, False),
    (3118, "Invalid value for parameter instagram_id: { instagram_id}", J, False, False),
    (3200, "{channel} channel is not enabled for customer", J, False, False),
    (3202, "Fallback is not enabled for Customer ID", J, False, False),
    (3205, "Rate Limit Exceeded", J, None, False),
    (3207, "Messaging exceeded transaction hard cap. Request denied.", J, None, False),
    (3208, "Provider Account ID not found", J, None, False),
    (3209, "Phone number not registered for testing", J, None, False),
    (3302, "Missing parameter phone_number", J, True, False),
    (3303, "Missing parameter message", J, True, False),
    (3304, "Missing parameter message_type", J, True, False),
    (3305, "Missing template specific parameters", J, None, False),
    (3306, "Missing message parameters for specified channel", J, False, False),
    (3400, "Not authorized", J, True, False),
    (3405, "Missing required Authorization header", J, None, False),
    (3406, "CustomerID Account Suspended", J, None, False),
    (3408, "CustomerID Account Not Found", J, None, False),
    (3409, "Invalid source IP address", J, None, False),
    (3410, "Invalid Customer ID", J, None, False),
    (3411, "Invalid API Key", J, None, False),
    (3412, "Required Authorization header is not in the correct format", J, None, False),
    (3413, "Not Allowed IP Address", J, None, False),
    (3500, "System Unavailable", F, True, True),
    (3601, "CustomerID Account Not Found", J, None, False),
    # --- Inbound (seed 003) ---
    (1500, "Delivered to customer", I, None, False),
    # --- SMS API and SMS Verify (seed 002): 200-599 ---
    (200, "Delivered to handset", D, True, False),
    (203, "Delivered to gateway", P, False, False),
    (207, "Error delivering SMS to handset (reason unknown)", F, True, False),
    (210, "Temporary phone error", F, True, True),
    (211, "Permanent phone error", F, True, False),
    (220, "Gateway/network cannot route message", F, True, False),
    (221, "Message expired before delivery", F, True, False),
    (222, "SMS not supported", F, None, False),
    (229, "Message blocked by customer request", B, None, False),
    (230, "Message blocked by Telesign", B, None, False),
    (231, "Invalid/unsupported", J, None, False),
    (233, "Message blocked due to high risk score.", B, None, False),
    (237, "Message blocked in requested country", B, None, False),
    (250, "Final status unknown", U, None, False),
    (251, "Message successfully sent out for delivery, however final confirmation of delivery to handset was not received.", U, None, False),
    (290, "Message in progress", P, None, False),
    (292, "Queued by gateway", P, None, False),
    (295, "Status delayed", P, None, False),
    (500, "Transaction not attempted", F, None, False),
    (501, "Not authorized", J, None, False),
    (502, "Campaign error", J, None, False),
    (503, "Carrier rejected - temporary problem", F, None, True),
    (504, "Carrier rejected - permanent error", F, None, False),
    (505, "Error on gateway - temporary error", F, None, True),
    (506, "Error on gateway - permanent error", F, None, False),
    (507, "Invalid destination address", F, None, False),
    (508, "Invalid source address", J, None, False),
    (509, "Parameters problem", J, None, False),
    (510, "Message blocked by subscriber action or request", B, None, False),
    (511, "Subscriber low on credit", F, None, False),
    (512, "Roaming error", F, None, False),
    (513, "Mobile number portability error", F, None, False),
    (514, "Subscriber absent", F, None, True),
    (515, "Suspected spam", F, None, False),
    (517, "Selected DLT details for India not supported", J, None, False),
    (518, "Message blocked due to high risk SIM SWAP indicator", B, None, False),
    (519, "Message not sent - requested SIM SWAP check could not be performed", B, None, False),
    (520, "Content sent is not allowed", B, None, False),
    (521, "Requested Sender ID is not allowed for destination", J, None, False),
    (599, "Status not available", U, None, False),
    # --- Error codes (seed 002): request-level refusals; -90001 says to try again ---
    (-10001, "Invalid Request", J, None, False),
    (-10004, "Reference ID expired.", J, None, False),
    (-10009, "Invalid source IP address.", J, None, False),
    (-20001, "Invalid Request: CustomerID Parameter", J, None, False),
    (-20002, "This product is not enabled for this Customer ID.", J, None, False),
    (-30000, "Invalid Customer ID.", J, None, False),
    (-30001, "Customer ID Account Suspended.", J, None, False),
    (-30002, "Customer ID Account Not Activated.", J, None, False),
    (-30003, "Customer ID new account limit reached.", J, None, False),
    (-30004, "Missing required 'Authorization' header", J, None, False),
    (-30005, "Required 'Authorization' header is not in the correct format", J, None, False),
    (-30006, "Invalid Signature", J, None, False),
    (-30007, "Missing required 'Date' or 'x-ts-date' header", J, None, False),
    (-30008, "Invalid 'x-ts-auth-method' header.", J, None, False),
    (-30009, "'Date' or 'x-ts-date' header is not RFC822 compliant", J, None, False),
    (-30010, "'Date' or 'x-ts-date' header is not within tolerable range", J, None, False),
    (-30011, "'x-ts-nonce' header value is either too long or too short", J, None, False),
    (-30012, "'x-ts-nonce' header value has been used recently", J, None, False),
    (-30015, "Invalid API Key.", J, None, False),
    (-40007, "Rate Limit Exceeded", J, None, False),
    (-40008, "<product> exceeded transaction hard cap. Request denied.", J, None, False),
    (-90001, "System Unavailable, please try again later.", F, None, True),
)


def _finality(outcome: Outcome, stated: bool | None) -> bool:
    return stated if stated is not None else outcome is not Outcome.PENDING


STATUS_CODES: dict[int, CodeInfo] = {
    code: CodeInfo(description, outcome, _finality(outcome, stated), retryable)
    for code, description, outcome, stated, retryable in _ROWS
}

UNKNOWN_CODE = CodeInfo("Unknown status code", Outcome.UNKNOWN, True, False)


# 3000 on a channel with read receipts: built once (NamedTuple._replace costs a microsecond).
_DELIVERED_READ_MAY_FOLLOW = STATUS_CODES[DELIVERED_AWAITING_READ]._replace(final=False)


def lookup(code: int, channel: str | None = None) -> CodeInfo:
    """Classify a code; `channel` matters only for 3000, which a read receipt may still follow."""
    if code == DELIVERED_AWAITING_READ and channel in READ_RECEIPT_CHANNELS:
        return _DELIVERED_READ_MAY_FOLLOW
    return STATUS_CODES.get(code, UNKNOWN_CODE)
