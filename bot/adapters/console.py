"""The console platform: prints each post and its target. For demos and dry runs."""
from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar, TextIO

from bot.adapters.base import Adapter, Option
from bot.models import Post, Receipt


class ConsoleAdapter(Adapter):
    platform: ClassVar[str] = "console"
    max_length: ClassVar[int] = 280
    url_length: ClassVar[int | None] = 23
    counting: ClassVar[str] = "twitter"
    options: ClassVar[Mapping[str, Option]] = {
        "stream": Option(str, "stdout", choices=("stdout", "stderr")),
    }

    def publish(self, post: Post) -> Receipt:
        out: TextIO = sys.stderr if self.opts["stream"] == "stderr" else sys.stdout
        out.write(f"--- {self.account} ({post.key})\n{post.text}\n")
        if post.link and post.link not in post.text:
            out.write(f"[link] {post.link}\n")
        out.flush()
        digest = hashlib.sha256(post.key.encode()).hexdigest()[:12]
        return Receipt(platform_id=f"console-{digest}")

    def find_recent(self, post: Post, since: datetime) -> Receipt | None:
        return None
