"""The ``cluster`` method: VAE (on features or pixels) + k-means, scored against labels it never trains on."""
