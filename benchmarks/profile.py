"""Profile one polars pass with pyinstrument: `python -m benchmarks.profile '<json spec>' OUT.txt`.

Polars runs in Rust, so the profile attributes time to the Python line that collects a frame:
that is the question it answers (which collect, in which KPI family, costs what).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pyinstrument import Profiler

from benchmarks.steps import polars_pass


def main(argv: list[str]) -> None:
    """Run the pass under the profiler and write the call tree as text."""
    spec = json.loads(argv[0])
    profiler = Profiler(interval=0.005)
    profiler.start()
    figures = polars_pass(spec)
    profiler.stop()
    Path(argv[1]).write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1:])
