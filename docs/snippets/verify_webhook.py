# Verifying a keygate webhook in Python (standard library only). `secret` is the endpoint's
# `whsec_…`; the headers and the raw body (bytes) are as they arrived.
import base64
import hashlib
import hmac
import time


def verify(secret, msg_id, timestamp, signature, body):
    # Refuse replays: the timestamp must be within five minutes of now.
    try:
        if abs(time.time() - int(timestamp)) > 300:
            return False
    except ValueError:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # Several signatures while a rolled secret's grace lasts: any may match.
    return any(
        hmac.compare_digest(candidate.removeprefix("v1,"), expected)
        for candidate in signature.split(" ")
        if candidate.startswith("v1,")
    )
