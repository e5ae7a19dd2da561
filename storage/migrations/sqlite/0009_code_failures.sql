-- Lifetime count of wrong e-mail codes of an account (issue 7 review, finding 4): a new
-- code (resend) resets `attempts` but not this; past a cap the account is locked out of
-- confirming until a new sign-up replaces it.
ALTER TABLE email_codes ADD COLUMN failures INTEGER NOT NULL DEFAULT 0
