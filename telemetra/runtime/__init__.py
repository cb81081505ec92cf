"""The composition root: the services built once, and the parts of each process started and stopped in one
declared order (``processes.py``). `serve`'s lifespan, `worker` and the CLI all run through it; nothing below
it imports it."""

from telemetra.runtime.lifecycle import Runtime
from telemetra.runtime.processes import command_runtime, ingest_runtime, serve_runtime
from telemetra.runtime.services import Services, build_services

__all__ = ["Runtime", "Services", "build_services", "serve_runtime", "ingest_runtime", "command_runtime"]
