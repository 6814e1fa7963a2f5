"""The paper's protocol and comparisons: the fixed-λ grid (``grid``), the baselines SGDA, AMF
and NeuMF (``baselines``), Table 2 on one dataset (``reproduce``) and the figures (``plots``)."""
