"""``hepcore phash add FILE [--distance N] [--label TEXT] | list | remove ID | check FILE``."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from PIL import Image, UnidentifiedImageError

from hepcore.cli import display_name, path_arg
from hepcore.clock import iso_ms

from .blocklist import DEFAULT_DISTANCE, MAX_DISTANCE, Blocklist
from .phash import distance, phash, to_hex

if TYPE_CHECKING:
    from hepcore.runtime import Runtime

# A hash of a flat image is rounding noise: it would match arbitrary pictures.
MIN_DETAIL = 2.0


def _blocklist(runtime: Runtime) -> Blocklist:
    return Blocklist(runtime.db, runtime.clock)


def hash_file(path: str) -> int:
    """The pHash of the first frame of an image file; ``ValueError`` when it is not
    a readable image or is too flat to fingerprint."""
    with open(path, "rb") as fh:  # a file that cannot be read: the CLI's usual message
        try:
            with Image.open(fh) as image:
                image.load()
                grey = image.convert("L").resize((32, 32), Image.Resampling.BOX)
                values = list(grey.tobytes())
                mean = sum(values) / len(values)
                spread = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
                if spread < MIN_DETAIL:
                    raise ValueError(f"{path}: the image is almost flat; its hash would match"
                                     " unrelated images")
                return phash(image)
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
            raise ValueError(f"{path}: not a readable image ({exc})") from None


def cmd_add(args: argparse.Namespace, runtime: Runtime) -> int:
    value = hash_file(args.file)
    entry = _blocklist(runtime).add(value, args.distance, args.label or display_name(args.file))
    print(f"{entry.id}\t{to_hex(entry.hash)}\tdistance={entry.distance}\t{entry.label}")
    return 0


def cmd_list(args: argparse.Namespace, runtime: Runtime) -> int:
    entries = _blocklist(runtime).entries()
    if args.json:
        print(json.dumps([e.as_json() for e in entries], indent=2))
        return 0
    for e in entries:
        print(f"{e.id}\t{to_hex(e.hash)}\tdistance={e.distance}\t{iso_ms(e.created_at)}"
              f"\t{e.label or ''}")
    return 0


def cmd_remove(args: argparse.Namespace, runtime: Runtime) -> int:
    if not _blocklist(runtime).remove(args.id):
        raise ValueError(f"no blocklist entry {args.id}")
    print(f"removed {args.id}")
    return 0


def cmd_check(args: argparse.Namespace, runtime: Runtime) -> int:
    """Exit 0 when the file would pass, 3 when an entry blocks it."""
    value = hash_file(args.file)
    nearest = sorted(((distance(value, e.hash), e) for e in _blocklist(runtime).entries()),
                     key=lambda pair: pair[0])
    blocked = [(gap, e) for gap, e in nearest if gap <= e.distance]
    if blocked:
        gap, entry = blocked[0]
        print(f"blocked by entry {entry.id} ({entry.label or ''}): {gap} bits apart,"
              f" limit {entry.distance}")
        return 3
    if nearest:
        gap, entry = nearest[0]
        print(f"passes; nearest entry {entry.id} is {gap} bits apart (limit {entry.distance})")
    else:
        print("passes; the blocklist is empty")
    return 0


def _distance(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= MAX_DISTANCE:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_DISTANCE}")
    return value


def add_commands(subparsers: Any) -> None:
    phash = subparsers.add_parser("phash", help="the perceptual-hash blocklist of images")
    actions = phash.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    p = actions.add_parser("add", help="block images that look like FILE")
    p.add_argument("file", type=path_arg)
    p.add_argument("--distance", type=_distance, default=DEFAULT_DISTANCE,
                   help=f"how many of the 64 bits may differ (default {DEFAULT_DISTANCE})")
    p.add_argument("--label", help="a note for operators (default: the file name)")
    p.set_defaults(func=cmd_add)

    p = actions.add_parser("list", help="the blocklist")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = actions.add_parser("remove", help="remove an entry")
    p.add_argument("id", type=int)
    p.set_defaults(func=cmd_remove)

    p = actions.add_parser("check", help="would FILE be refused? (exit 3 if so)")
    p.add_argument("file", type=path_arg)
    p.set_defaults(func=cmd_check)
