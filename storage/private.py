"""Files and folders only the bot's own user may read: household records, exports, charts and
attachments are personal data (Decree 13/2023/ND-CP), so a folder the bot owns is 0700 and a
file it writes is 0600, whatever umask the process was started with.

A file is created with its mode before a byte is written into it, so it is never readable by
others, not even for the moment between writing and a chmod.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """The folder (and any missing parents), 0700: mkdir's own mode is cut by the umask."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR)
    return path


def private_file(path: Path) -> Path:
    """Create the file empty with mode 0600 (or make an existing one 0600) before writing.

    Writers that open it afterwards with "w" or "wb" truncate it and keep the mode."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
    os.close(descriptor)
    os.chmod(path, PRIVATE_FILE)
    return path


def folder_for(path: Path) -> Path:
    """The folder a file goes in: made 0700 when it does not exist yet; an existing folder
    (one the admin chose, their home say) keeps its mode."""
    if not path.parent.is_dir():
        private_dir(path.parent)
    return path.parent
