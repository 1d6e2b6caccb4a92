"""LightningModules, each instantiated from a ``conf/model/*.yaml`` by its ``_target_``."""
