"""A synthetic aerial-ground video ReID data set in the DetReIDX layout, for the demo, tests and benchmarks.

    from farreid.data.synthetic import generate
    summary = generate("runs/demo/data", num_ids=60, seed=0)
"""

from farreid.data.synthetic.generate import CAPTURE_POINTS, generate, person_height_px

__all__ = ["CAPTURE_POINTS", "generate", "person_height_px"]
