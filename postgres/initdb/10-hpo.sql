-- Run once, on the first start of an empty data folder, by both the official image and ours.
-- Optuna compares trial heartbeats with the database's clock and stores naive timestamps:
-- pin this database's time zone so every worker and the orchestrator read the same clock.
DO $$
BEGIN
  EXECUTE format('ALTER DATABASE %I SET timezone TO %L', current_database(), 'UTC');
END
$$;
