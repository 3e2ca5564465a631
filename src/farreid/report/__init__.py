"""Reports for people: plots, picture grids and the demo report."""
