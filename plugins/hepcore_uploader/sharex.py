"""Ready-made client configs: a ShareX ``.sxcu`` and a shell upload script.

The ``.sxcu`` carries the uploader token in its ``Authorization`` header
(ShareX needs it there); it never puts the token in a URL, and it has no
``DeletionURL`` because a deletion link would have to carry the token.
"""

from __future__ import annotations

import json
from typing import Any


def sxcu(*, api_base: str, token: str, name: str = "Hep.gg") -> dict[str, Any]:
    """A ShareX custom uploader for files, text and URL shortening.

    ShareX sends files and text as the multipart part ``file``; for URLs it
    sends no file and the ``link`` argument, which the uploader turns into a
    shortlink (a file and ``link`` together: the file wins, U5).
    """
    return {
        "Version": "15.0.0",
        "Name": name,
        "DestinationType": "ImageUploader, TextUploader, FileUploader, URLShortener",
        "RequestMethod": "POST",
        "RequestURL": f"{api_base}/upload",
        "Headers": {"Authorization": token},
        "Body": "MultipartFormData",
        "Arguments": {"link": "$input$"},
        "FileFormName": "file",
        "URL": "$json:url$",
        "ErrorMessage": "$json:error$",
    }


def sxcu_bytes(**kwargs: Any) -> bytes:
    return (json.dumps(sxcu(**kwargs), indent=2) + "\n").encode("utf-8")


def upload_script(*, api_base: str) -> str:
    """A POSIX shell script for Flameshot, scrot or a terminal: uploads a file
    (or a screenshot piped on stdin) and prints the URL. The token comes
    from ``$HEPCORE_TOKEN``, never from the script itself."""
    return f"""#!/bin/sh
# Upload a file to {api_base} and print its URL.
#   hepcore-upload.sh FILE
#   flameshot gui --raw | hepcore-upload.sh
# Needs curl, and your uploader token in $HEPCORE_TOKEN.
set -eu
: "${{HEPCORE_TOKEN:?set HEPCORE_TOKEN to your uploader token}}"
name=""
if [ $# -ge 1 ]; then
    src="$1"
else
    src=$(mktemp); trap 'rm -f "$src"' EXIT
    cat > "$src"
    name=";filename=stdin"  # not the temporary name, whose suffix would become the extension
fi
# Quoted for curl -F, so names with "," or ";" work.
quoted=$(printf '%s' "$src" | sed 's/[\\\\"]/\\\\&/g')
reply=$(curl -sS -H "Authorization: $HEPCORE_TOKEN" -F "file=@\\"$quoted\\"$name" "{api_base}/upload")
url=$(printf '%s' "$reply" | sed -n 's/.*"url":"\\([^"]*\\)".*/\\1/p')
if [ -z "$url" ]; then
    printf '%s\\n' "$reply" >&2
    exit 1
fi
printf '%s\\n' "$url"
command -v xclip >/dev/null 2>&1 && printf '%s' "$url" | xclip -selection clipboard || true
"""
