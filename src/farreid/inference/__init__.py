"""Tracklet-in / embedding-out inference, deployment export, and tracklets from tracker output."""
