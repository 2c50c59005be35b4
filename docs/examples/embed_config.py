"""A configuration built in code, for a host that has its own settings system."""

from __future__ import annotations

from pathlib import Path

import hepcore
from hepcore.config import read_secrets

MIB = 1024 * 1024


def make_config(data_dir: str | Path) -> hepcore.Config:
    data_dir = Path(data_dir)
    return hepcore.Config(
        data_dir=data_dir,
        # $HEPCORE_SECRETS (comma-separated) or <data_dir>/secret; never in code.
        secrets=read_secrets(data_dir),
        services={
            "uploader": hepcore.ServiceConfig(
                "uploader", prefix="/files", public_base_url="https://example.org/files",
                options={"max_file_size": 25 * MIB, "allowed_types": ["image/*", "text/plain"]},
            ),
        },
        trust_proxy=True,  # behind your own reverse proxy
    )
