"""farreid: video person re-identification at extreme distance with adapted CLIP vision transformers."""

__version__ = "0.1.0"
