"""Data: sources, spoken form, masking, packing, synthetic demo data."""
