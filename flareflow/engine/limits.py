"""Default limits every host shares (settings, the router, both Cloudflare shells, the local runtime)."""

from __future__ import annotations

from typing import Final

#: Largest request body (and WebSocket frame) in bytes; larger ones get 413 (1009 for a frame).
DEFAULT_MAX_BODY: Final = 1024 * 1024
#: JSON payloads larger than this many bytes are stored in the blob store by reference.
DEFAULT_PAYLOAD_THRESHOLD: Final = 10 * 1024
