//! Recorded results.
