"""Where the bundled, offline sample lives."""
from pathlib import Path

SAMPLE_VIDEO = Path(__file__).resolve().parent.parent / "samples" / "vtest.avi"
