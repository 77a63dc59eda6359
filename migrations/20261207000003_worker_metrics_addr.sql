-- Where each worker serves its metrics: several workers on one host share
-- the default port only when all but the first fall back to a free one, so
-- the console shows the address each one bound.
ALTER TABLE workers ADD COLUMN metrics_addr text NULL;
