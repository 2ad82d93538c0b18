import os
import sys

from core.cli import EXIT_INTERRUPTED, main

code = main()
if code == EXIT_INTERRUPTED:
    # An interrupted run's worker threads (a decoder, a detector) may still be inside native code, and
    # the interpreter's teardown then aborted the process now and then (SIGABRT, "terminate called
    # without an active exception", exit 134). Every write is atomic and the message is out: skip it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
