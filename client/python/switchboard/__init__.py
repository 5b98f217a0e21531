"""Python client of the switchboard event broker (docs/PROTOCOL.md); needs pyzmq (Debian python3-zmq)."""

from .client import BrokerError, Client, Subscription, Timeout
from .protocol import Event

__all__ = ["BrokerError", "Client", "Event", "Subscription", "Timeout"]
