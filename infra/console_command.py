"""``sagestack console``: print the console's URL and open it in the user's browser (docs/console.md)."""

from __future__ import annotations

import sys
import urllib.request
import webbrowser

from infra.config import StackSettings

CONSOLE_PATH = "/console/"


def console_url(settings: StackSettings) -> str:
    return f"{settings.url}{CONSOLE_PATH}"


def cmd_console(settings: StackSettings) -> int:
    url = console_url(settings)
    try:
        with urllib.request.urlopen(f"{settings.url}/_sagestack/health", timeout=1.0):
            pass
    except OSError:
        print(f"no stack on {settings.url}: start it with `make up`, then open {url}", file=sys.stderr)
        return 1
    print(url)
    webbrowser.open(url)  # no browser here (a server, CI): the printed URL is the answer
    return 0
