"""Starts moto's AWS-protocol server on loopback for the aws-kms tests, with one correction.

moto <= 5.2.5 ignores ``MessageType=DIGEST`` in KMS ``Sign`` (upstream PR #10202, still open): it
hashes the 32-byte digest with SHA-256 *again* before signing, so the signature is over
sha256(digest) and never verifies over the digest that was sent. Real KMS signs the digest as
given. This launcher replaces moto's ``Sign`` handler for ``MessageType=DIGEST`` only: it insists
on 32 bytes and ``ECDSA_SHA_256`` and signs the bytes as a prehashed SHA-256 digest with the key's
private key. ``RAW`` messages still go to moto unchanged.

Usage (the Rust harness in ``signer/tests/common/moto.rs`` does this):

    .venv/bin/python moto_kms_server.py PORT MAX_LIFETIME_SECS   # PORT 0: a free one, printed

It listens on 127.0.0.1 only, and exits on its own when stdin reaches EOF (the test process that
started it has gone) or after MAX_LIFETIME_SECS, whichever comes first.
"""

import base64
import json
import os
import sys
import threading

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from moto.kms.exceptions import ValidationException
from moto.kms.responses import KmsResponse
from moto.kms.utils import ECDSAPrivateKey
from moto.server import main as moto_main

_moto_sign = KmsResponse.sign


def _sign_digest(self: KmsResponse) -> str:
    """KMS Sign with MessageType=DIGEST as real KMS does it: no second hash."""
    if self._get_param("MessageType") != "DIGEST":
        return _moto_sign(self)
    key_id = self._get_param("KeyId")
    self._validate_key_id(key_id)
    algorithm = self._get_param("SigningAlgorithm")
    digest = self._get_param("Message") or b""
    if isinstance(digest, str):
        # moto's parser already turns the JSON blob into bytes; be safe if it ever does not.
        try:
            digest = base64.b64decode(digest, validate=True)
        except ValueError:
            raise ValidationException("Message is not valid base64")
    if algorithm != "ECDSA_SHA_256" or len(digest) != 32:
        raise ValidationException(
            "this test server signs DIGEST messages of 32 bytes with ECDSA_SHA_256 only; "
            f"got {len(digest)} bytes with {algorithm}"
        )
    key = self.kms_backend.describe_key(key_id)
    if key.key_usage != "SIGN_VERIFY" or algorithm not in key.signing_algorithms:
        raise ValidationException(
            f"key {key.id} cannot sign with {algorithm} (usage {key.key_usage})"
        )
    if not isinstance(key.private_key, ECDSAPrivateKey):
        raise ValidationException(f"key {key.id} is not an ECC key")
    der = key.private_key.private_key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    return json.dumps(
        {
            "KeyId": key.arn,
            "Signature": base64.b64encode(der).decode("ascii"),
            "SigningAlgorithm": algorithm,
        }
    )


def _exit_when_stdin_closes() -> None:
    sys.stdin.buffer.read()
    os._exit(0)


def main() -> None:
    port, lifetime = sys.argv[1], float(sys.argv[2])
    KmsResponse.sign = _sign_digest
    threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    threading.Timer(lifetime, lambda: os._exit(0)).start()
    moto_main(["-H", "127.0.0.1", "-p", port])


if __name__ == "__main__":
    main()
