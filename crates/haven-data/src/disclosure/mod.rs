//! Automated disclosure checks for airlock requests (being written).
