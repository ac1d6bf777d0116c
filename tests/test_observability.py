"""Request ids: unique within a process and across forked workers, shaped like a uuid4's hex."""

from __future__ import annotations

import os
import re

from checkstack_core.observability import new_request_id


def test_request_ids_are_unique_hex():
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_a_forked_worker_does_not_repeat_its_parents_ids():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent = new_request_id()
    assert len(child) == 32 and child[:20] != parent[:20]
