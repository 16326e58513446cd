"""Encryption at rest of image-credential secrets (Fernet: AES-128-CBC plus HMAC-SHA256)."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from fleetwire.cloud.errors import CloudError


class SecretDecryptionError(CloudError):
    """A stored secret cannot be decrypted with the configured key (was the key changed?)."""


class SecretBox:
    """Encrypts and decrypts short secrets with a key derived from ``Settings.secret_key``."""

    def __init__(self, key: str) -> None:
        # Any passphrase becomes a valid 32-byte Fernet key.
        derived = hashlib.sha256(b"fleetwire-image-credentials\x00" + key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, secret: str) -> str:
        """The ciphertext of ``secret`` as ASCII text."""
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The clear text of a ciphertext made by :meth:`encrypt`."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken:
            raise SecretDecryptionError("image credential secret cannot be decrypted") from None
