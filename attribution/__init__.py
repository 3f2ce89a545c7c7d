"""Attribution: which channels and campaigns earned the revenue."""
