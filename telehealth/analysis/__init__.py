"""Face measurements on stored stills: MediaPipe Face Mesh landmarks and Emotrics-style metrics.

``landmarks`` runs the detector (in worker processes, see ``pool``); ``frame``, ``metrics`` and
``visit`` are pure functions of landmark arrays, so they are testable on hand-made point sets.
"""
