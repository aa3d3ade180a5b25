"""Reports of a search: the plots in its result folder."""
