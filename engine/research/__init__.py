"""Research tools behind the studies: covariate shift, and choosing which images to fine-tune on."""
