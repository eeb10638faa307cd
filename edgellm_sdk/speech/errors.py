"""Speech errors (defined in ``edgellm_sdk.errors``; re-exported for the speech modules)."""

from ..errors import SpeechError

__all__ = ["SpeechError"]
