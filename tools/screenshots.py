"""Screenshots of TensorBoard's dashboards for a log folder, with headless Chromium.

Starts the real ``tensorboard`` on 127.0.0.1 (a free port), waits until it serves, shoots each
dashboard, stops the server, and writes palette PNGs (about a third of the size of Chromium's);
``--figures`` also copies image tags of each run out of its event files:

    python -m tools.screenshots /tmp/dash --out docs/images --prefix dashboard_ \
        --figures watched.by_depth/act_std

Headless Chromium draws no lines in Time Series' charts (they render in a worker); Scalars and
Custom Scalars show the same data.
"""

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

DASHBOARDS = ("timeseries", "scalars", "custom_scalars", "images")
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_tensorboard(logdir: Path, port: int, timeout: float = 60) -> subprocess.Popen:
    """The real server, ready: its run list is served (all event files read once)."""
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--load_fast", "false"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=2) as r:
                if r.read() not in (b"[]", b""):
                    return server
        except OSError:
            pass
        if server.poll() is not None:
            raise RuntimeError(f"tensorboard exited with status {server.returncode}")
        time.sleep(1)
    stop(server)
    raise TimeoutError(f"tensorboard served no run of {logdir} within {timeout:.0f} s")


def stop(server: subprocess.Popen) -> None:
    """Terminate the server and reap it; kill it if it does not stop within 30 s."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def shoot(url: str, path: Path, size: tuple[int, int], budget_ms: int = 15000) -> None:
    """One screenshot: Chromium waits ``budget_ms`` of virtual time for the page to settle."""
    browser = next((b for b in CHROMIUM if shutil.which(b)), None)
    if browser is None:
        raise FileNotFoundError(f"no Chromium found (tried {', '.join(CHROMIUM)})")
    with tempfile.TemporaryDirectory() as profile:  # no state from an earlier visit
        command = [browser, "--headless", "--no-sandbox", "--hide-scrollbars"]
        command += [f"--user-data-dir={profile}", f"--screenshot={path}"]
        command += [f"--window-size={size[0]},{size[1]}", f"--virtual-time-budget={budget_ms}"]
        subprocess.run([*command, url], check=True, capture_output=True, timeout=120)
    Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)


def export_figures(logdir: Path, tags: list[str], out: Path, prefix: str) -> list[Path]:
    """The last image of each tag in each run under ``logdir``, as ``<prefix><run>_<tag>.png``."""
    written = []
    for run in sorted({p.parent for p in logdir.rglob("events.out.tfevents.*")}):
        events = EventAccumulator(str(run), size_guidance={"images": 1}).Reload()
        for tag in set(tags) & set(events.Tags()["images"]):
            name = f"{run.relative_to(logdir)}_{tag}".replace("/", "_").replace("=", "_")
            path = out / f"{prefix}{name}.png"
            path.write_bytes(events.Images(tag)[-1].encoded_image_string)
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--prefix", default="dashboard_")
    parser.add_argument("--dashboards", nargs="+", default=list(DASHBOARDS))
    parser.add_argument("--size", type=int, nargs=2, default=(1600, 1200), metavar=("W", "H"))
    parser.add_argument("--figures", nargs="*", default=[], help="image tags to copy out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in export_figures(args.logdir, args.figures, args.out, args.prefix):
        print(f"{path}: {path.stat().st_size // 1024} KB")
    port = free_port()
    server = start_tensorboard(args.logdir, port)
    try:
        for dashboard in args.dashboards:
            path = args.out / f"{args.prefix}{dashboard}.png"
            shoot(f"http://127.0.0.1:{port}/#{dashboard}", path, tuple(args.size))
            print(f"{path}: {path.stat().st_size // 1024} KB")
    finally:
        stop(server)


if __name__ == "__main__":
    main()
