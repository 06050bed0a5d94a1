"""End-to-end tests of the command line (messages, refused options, help, results)."""
