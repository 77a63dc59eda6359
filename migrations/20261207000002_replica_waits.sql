-- A queued job that waits for the orders replica says why (shown by
-- GetOrderSummaryJob and the console; cleared when it is claimed), and an
-- attempt records up to which commit the replica had replayed when it
-- started reading (NULL: orders read from the primary).
ALTER TABLE summary_jobs
    ADD COLUMN wait_reason  text        NULL,
    ADD COLUMN orders_as_of timestamptz NULL;
