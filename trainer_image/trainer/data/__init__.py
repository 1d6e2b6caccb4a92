"""LightningDataModules, each instantiated from a ``conf/data/*.yaml`` by its ``_target_``."""
