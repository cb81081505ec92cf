"""Pure code: models, validation, time, keys. No I/O, no framework imports."""
