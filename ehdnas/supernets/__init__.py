"""Weight-sharing supernets: DARTS's continuous relaxation and FlowNAS's sliced encoder."""
