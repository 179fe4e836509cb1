"""A stand-in for Slicer's PythonSlicer, a CTK AppLauncher: it runs the rest of its command line
as a child process, forwards no signal to it and exits with the child's status.

It ignores SIGINT and SIGTERM, and its child inherits both as ignored, as a job started from a
background shell inherits SIGINT: the worst a job can be started with.
"""

import signal
import subprocess
import sys

signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
sys.exit(subprocess.call(sys.argv[1:]))
