"""The JS of the app's components: each one's own file after ui/mount.js (their shared mount and
teardown), read once at import."""
from __future__ import annotations

from pathlib import Path

MOUNT_JS = Path(__file__).with_name("mount.js").read_text()


def component_js(path: Path) -> str:
    return MOUNT_JS + "\n" + path.read_text()
