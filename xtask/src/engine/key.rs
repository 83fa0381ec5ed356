//! Cache keys.
