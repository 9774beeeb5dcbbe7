//! placeholder: owned by the lab helper
