"""Models: CLIP towers (`farreid.models.clip`) and the far-distance video ReID model assembled on them."""
