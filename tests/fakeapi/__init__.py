"""A fake Kubernetes API server for tests (see server.py for the details)."""

from . import objects
from .server import FAULTS, FakeApiServer, FakeApiServerThread, RequestRecord
from .store import Expired, Store

__all__ = ["FAULTS", "Expired", "FakeApiServer", "FakeApiServerThread", "RequestRecord",
           "Store", "objects"]
