"""Which addresses only this machine reaches: a worker container's loopback is its own.

Worker containers are on their own network, never the host's: a URL that names this host's
loopback (a database, a W&B server) reaches nothing from inside one.
"""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback"]


def is_loopback(host: str) -> bool:
    """``localhost`` (and its subdomains) or a loopback or unspecified IP address, v4 or v6."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified
