#!/usr/bin/env python3
"""Image upload benchmark: Fixitfy ``POST /api/v1/upload`` against a raw upload
of the same bytes.

For each host kind (``wsgi``: gunicorn, 1 worker, gthread x8; ``asgi``:
uvicorn, 1 worker) this starts one real hepcore server on 127.0.0.1 (a fresh
``hepcore init`` data directory: uploader at ``/``, images at ``/img``, both
rate limits raised out of the way, one account with an uploader key and an
``fxf_`` key) and uploads a 12-megapixel JPEG (4000x3000, photo-like, with
EXIF including GPS, orientation 1) over one keep-alive connection,
alternating between:

* **raw**: the uploader's ``POST /upload`` of the bytes (stream to disk,
  SHA-256, fsync, rename, row): what "receive and store" costs in hepcore;
* **image**: ``POST /img/api/v1/upload``: the same plus identification, the
  pixel-limit check, a decode of every byte of the scan at reduced (DCT)
  scale (validation; moderation plugins get that reduced image), the
  moderation hook, the metadata strip (segment-level for this JPEG: no pixel
  re-encode) and the delete-link row.

Each request carries a unique comment segment, so no image upload is a
dedupe hit (the strip removes it). Reported: uploads/s of each (median of the
repetitions) and their ratio; the target is >= 0.8x. ``--block-moderation``
runs the host with the bundled moderation plugin (``phash_blocklist``)
blocked, to measure what the plugin's own work costs (the decode is the same
reduced-scale one either way).

    python bench/images.py              # both kinds, about a minute on 2 cores
    python bench/images.py --quick      # a few seconds
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import MULTIPART_TYPE, multipart_body, run_server, versions


def photo_jpeg() -> bytes:
    """A 4000x3000 photo-like JPEG (gradient, texture, noise) with EXIF and GPS."""
    from PIL import Image

    gradient = Image.linear_gradient("L").resize((4000, 3000))
    noise = Image.effect_noise((4000, 3000), 18)
    texture = Image.radial_gradient("L").resize((4000, 3000))
    img = Image.merge("RGB", (gradient, Image.blend(texture, noise, 0.4),
                              Image.blend(gradient, noise, 0.3)))
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "BenchCam", "Model 12", 1
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (41.0, 0.0, 54.0), "E", (28.0, 58.0, 36.0)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


def unique(data: bytes, n: int) -> bytes:
    """``data`` with a comment segment that makes its hash unique."""
    text = f"bench-{n}-{time.time_ns()}".encode()
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]


def setup(data_dir: Path, block_moderation: bool) -> tuple[str, str]:
    subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data_dir), "init"],
                   check=True, stdout=subprocess.DEVNULL)
    config = data_dir / "hepcore.toml"
    text = config.read_text()
    text = text.replace("[services.uploader]\n",
                        "[services.uploader]\nupload_rate_per_minute = 1000000000\n", 1)
    text = text.replace("[services.images]\n", "[services.images]\n"
                        "upload_rate_per_minute = 1000000000\nupload_rate_per_day = 1000000000\n",
                        1)
    if block_moderation:
        text = text.replace("blocked = []", 'blocked = ["phash_blocklist"]')
    config.write_text(text)
    import hepcore

    runtime = hepcore.build_runtime(hepcore.load_config(data_dir))
    try:
        account = runtime.accounts.create("bench")
        raw_key, _ = runtime.keys.create("uploader", account.id, label="bench")
        image_key, _ = runtime.keys.create("images", account.id, label="bench")
    finally:
        runtime.close()
    return raw_key, image_key


def send(conn: http.client.HTTPConnection, path: str, body: bytes,
         auth: str) -> dict[str, Any]:
    conn.request("POST", path, body=body,
                 headers={"Authorization": auth, "Content-Type": MULTIPART_TYPE})
    resp = conn.getresponse()
    raw = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"{path} answered {resp.status}: {raw[:300]!r}")
    return json.loads(raw)


def run_kind(kind: str, data: bytes, reps: int, per_rep: int, block: bool) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"hepcore-bench-images-{kind}-"))
    try:
        raw_key, image_key = setup(workdir, block)
        with run_server(workdir, kind, workers=1, threads=8) as srv:
            conn = http.client.HTTPConnection(srv.url.removeprefix("http://"), timeout=120)
            counter = 0

            def phase(path: str, auth: str) -> float:
                nonlocal counter
                bodies = []
                for _ in range(per_rep):
                    counter += 1
                    bodies.append(multipart_body(unique(data, counter), "photo.jpg"))
                start = time.perf_counter()
                for body in bodies:
                    send(conn, path, body, auth)
                return per_rep / (time.perf_counter() - start)

            phase("/upload", raw_key)  # warm-up
            phase("/img/api/v1/upload", f"Bearer {image_key}")
            raw, image = [], []
            for _ in range(reps):
                raw.append(phase("/upload", raw_key))
                image.append(phase("/img/api/v1/upload", f"Bearer {image_key}"))
            conn.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    raw_rate, image_rate = statistics.median(raw), statistics.median(image)
    return {"kind": kind, "raw_per_s": raw_rate, "image_per_s": image_rate,
            "ratio": image_rate / raw_rate,
            "ratio_median_per_rep": statistics.median(i / r for i, r in zip(image, raw))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kind", choices=("wsgi", "asgi"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--block-moderation", action="store_true",
                        help="block the bundled moderation plugin (phash_blocklist) to"
                             " measure its own cost; the decode is the same either way")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    reps, per_rep = (2, 3) if args.quick else (5, 8)
    data = photo_jpeg()
    print(f"12 MP JPEG with EXIF: {len(data) / 1e6:.2f} MB; {reps} x {per_rep} uploads each;"
          f" moderation plugin {'blocked' if args.block_moderation else 'as installed'}")
    results = []
    for kind in ([args.kind] if args.kind else ["wsgi", "asgi"]):
        res = run_kind(kind, data, reps, per_rep, args.block_moderation)
        results.append(res)
        verdict = "PASS" if min(res["ratio"], res["ratio_median_per_rep"]) >= 0.8 else "FAIL"
        print(f"{kind}: raw {res['raw_per_s']:.1f}/s, image {res['image_per_s']:.1f}/s,"
              f" ratio {res['ratio']:.2f} (per-rep median {res['ratio_median_per_rep']:.2f})"
              f" target >= 0.8: {verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps({"versions": versions(), "results": results},
                                              indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
