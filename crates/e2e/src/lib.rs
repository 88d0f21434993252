//! End-to-end tests live in `tests/e2e`: the three services in one process, each on its own port and schema of
//! one fresh database, behind nginx rendered from the real gateway template, talking over a real broker.
