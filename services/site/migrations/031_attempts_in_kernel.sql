-- The sign-in attempts are counted by the kernel's rate limits (web.attempts) since 023.
DROP TABLE IF EXISTS site.sign_in_attempts;
