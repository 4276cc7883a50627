"""Result tables (long format, typed) and the report."""
