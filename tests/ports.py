"""A loopback port nothing listens on, for the tests of refused connections."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def closed_port() -> Iterator[int]:
    """A local port nothing listens on, held for the whole block.

    The socket stays bound but never listens: connections to it are refused at once, and no
    other test's emulator can take the port meanwhile (a port bound and then released was
    reused under a loaded parallel run, so the "refused" case met a live server).
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        yield int(probe.getsockname()[1])
