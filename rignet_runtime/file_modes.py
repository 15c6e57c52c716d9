"""File modes: what the project writes gets the mode a plain `open` or `mkdir` would give it.

Atomic writes go through `tempfile.mkstemp` / `mkdtemp`, whose files and folders are private
(0600, 0700); `apply_umask` gives them the umask's mode before they take their final name, so
that checkpoints, exports, shards and device manifests follow one rule.
"""

import os


def current_umask():
    """The process's umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path):
    """Gives `path` the mode a plain `open` or `mkdir` would have: 0666 (files) or 0777
    (folders) less the umask."""
    base = 0o777 if os.path.isdir(path) else 0o666
    os.chmod(path, base & ~current_umask())
