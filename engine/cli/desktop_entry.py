"""``vllm-desk install-desktop-entry``: the app in the desktop's menu (and optionally at login)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from engine.integration.autostart import autostart_file, set_autostart
from engine.integration.desktop_entry import install_desktop_entry, uninstall_desktop_entry
from engine.paths import AppPaths


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "install-desktop-entry",
        help="add vLLM Desk to the application menu (.desktop file, AppStream metainfo, icons)",
        description="Writes the launcher, AppStream metainfo and icons into $XDG_DATA_HOME "
        "(default ~/.local/share).",
    )
    parser.add_argument("--exec", dest="exec_command", metavar="CMD", help="command the launcher runs")
    parser.add_argument("--remove", action="store_true", help="remove what an earlier run installed")
    parser.add_argument(
        "--autostart",
        choices=("on", "off"),
        help="also switch starting the tray launcher at login on or off",
    )
    parser.add_argument("--json", action="store_true", help="print what was done as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report: dict[str, Any] = {}
    if args.remove:
        report["removed"] = [str(p) for p in uninstall_desktop_entry()]
    else:
        files = install_desktop_entry(command=args.exec_command)
        report["installed"] = [str(p) for p in files.all()]
    if args.autostart is not None:
        paths = AppPaths.resolve(args.data_dir)  # a custom data folder starts with the app at login too
        set_autostart(args.autostart == "on", command=args.exec_command, paths=paths)
        report["autostart"] = {"enabled": args.autostart == "on", "file": str(autostart_file())}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for key in ("installed", "removed"):
        if key in report:
            verb = "Installed" if key == "installed" else "Removed"
            print(f"{verb} {len(report[key])} files:")
            for path in report[key]:
                print(f"  {path}")
    if "autostart" in report:
        state = "on" if report["autostart"]["enabled"] else "off"
        print(f"Autostart at login: {state} ({report['autostart']['file']})")
    return 0
