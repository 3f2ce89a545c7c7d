"""Customer value: the customer pyramid, RFM, predicted lifetime value and its six parts,
loyalty types and audience analysis (pure pandas/scipy over frames; SQL does the
aggregation)."""
