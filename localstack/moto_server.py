#!/usr/bin/env python3
"""moto's server, answering one DynamoDB request at a time.

Usage: moto_server.py [moto_server's arguments, e.g. -H 127.0.0.1 -p 4566]

moto applies a DynamoDB update as a read-modify-write in Python, and its server
runs each request on its own thread: two concurrent UpdateItem calls on one item
can lose one's ADD (4 threads x 1,000 `ADD a :one` end at 3,995 with moto 5.2.5).
DynamoDB applies every single-item update atomically, and sagemeter's fleet
relies on it (several processes add to one item), so the emulator must too: this
handles DynamoDB requests (X-Amz-Target `DynamoDB_*`) under one lock. Every
other service is served as moto serves it, concurrently (a SageMaker call must
not wait behind a DescribeEndpoint: receipts time the calls).
"""

import sys
import threading

import moto.server as server

_lock = threading.Lock()
_Dispatcher = server.DomainDispatcherApplication


class SerialisedDispatcher(_Dispatcher):
    """moto's dispatcher with each DynamoDB request handled under one lock."""

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with _lock:
                return super().__call__(environ, start_response)
        return super().__call__(environ, start_response)


server.DomainDispatcherApplication = SerialisedDispatcher

if __name__ == "__main__":
    server.main(sys.argv[1:])
