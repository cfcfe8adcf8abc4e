"""Who gets in: accounts and operators, API tokens, console sessions, and failed logins throttled."""
