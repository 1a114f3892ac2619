//! Airlock file work: snapshots into quarantine and delivery of the reviewed bytes (being written).
