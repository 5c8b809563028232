"""Quarterly access reviews: the record of each (:mod:`~gateway.reviews.records`); the review
itself is the command :mod:`gateway.commands.review`."""

from __future__ import annotations

from gateway.reviews.records import ReviewRecord, ReviewRecorder, last_review, reviews

__all__ = ["ReviewRecord", "ReviewRecorder", "last_review", "reviews"]
