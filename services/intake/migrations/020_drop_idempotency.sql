-- Idempotency-Key answers live in the kernel's web.idempotency since decision 0012; this
-- service's own table is read and written by nothing any more.
DROP TABLE IF EXISTS intake.idempotency;
