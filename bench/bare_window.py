"""Baseline for the cold start: a bare ``QMainWindow`` printing the same startup lines as the app's hook.

``python -m bench.bare_window [stay]`` prints ``VLLM_DESK_BENCH_STARTUP shown <epoch>`` once the window is
shown and its first events ran, then ``... painted <epoch>``, and quits (``stay``: keeps running).
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow


def main() -> int:
    app = QApplication(sys.argv[:1])
    window = QMainWindow()
    window.setWindowTitle("bare")
    window.resize(1100, 760)
    window.show()

    def shown() -> None:
        print(f"VLLM_DESK_BENCH_STARTUP shown {time.time():.6f}", flush=True)
        print(f"VLLM_DESK_BENCH_STARTUP painted {time.time():.6f}", flush=True)
        if "stay" not in sys.argv[1:]:
            app.quit()

    QTimer.singleShot(0, shown)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
