"""The consent text a patient agrees to; its version is stored with the visit."""

from __future__ import annotations

CONSENT_VERSION = "2026-11-1"

CONSENT_TEXT = (
    "During this video visit your clinician may take standardized photographs and short video "
    "clips of your face while you make a series of expressions (resting, raising your eyebrows, "
    "closing your eyes, smiling and others). They are used to assess your facial nerve function "
    "and to compare your progress between visits. They are stored securely in your medical record "
    "at the clinic, are seen only by your care team, and are not kept on your phone or computer. "
    "You may decline: the video visit still takes place without any photographs or clips being "
    "stored, and you can change your mind at any time by telling your clinician."
)
