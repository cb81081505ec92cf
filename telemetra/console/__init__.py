"""The web console: pages for people, served by the same process as the API under /console/.

It builds the API app (``telemetra.api.create_app``) and adds one HTML shell and its static files; every
page is plain ES modules that call the public API with the session cookie. It holds no logic of its own.
"""

from telemetra.console.app import CONSOLE_CSP, create_console_app

__all__ = ["create_console_app", "CONSOLE_CSP"]
