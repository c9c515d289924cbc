"""What goes out: Parquet parts with their manifest, flat token arrays, statistics."""
