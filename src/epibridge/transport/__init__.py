"""Moving data between nodes and the hub: identities and trust, sealing, delivery.

``keys`` issues and checks key certificates, ``keystore`` keeps a party's private keys
encrypted on disk, ``trust`` verifies the hub's signed trust list and resolves a
country's key id to a public key. See ``docs/security.md``.
"""
