"""What lopt_np installs on the workers of the Dask ``LocalCluster`` it starts (imported only
where Dask distributed is, by :class:`lopt_np.sweep.Executor`)."""

import signal
import threading

from distributed.diagnostics.plugin import WorkerPlugin


class IgnoreInterrupt(WorkerPlugin):
    """The local workers ignore SIGINT: Ctrl-C reaches the whole process group, and the client
    process alone stops the sweep and shuts its cluster down (one line, no worker
    tracebacks). Applied to every worker, those a nanny restarts included."""

    def setup(self, worker):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
